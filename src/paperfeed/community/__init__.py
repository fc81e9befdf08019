"""Community features: accounts, sessions' user model, submissions, upvotes, comments, moderation
and abuse limits.

The modules here hold the rules (validation, permissions, quotas, rate limits) and call the SQL in
:mod:`paperfeed.store.community_store`; the web layer (``web/security.py``,
``web/community_routes.py``) and the ``paperfeed user`` commands are thin shells around them.
Everything takes a :class:`paperfeed.community.core.Community` (settings, database, clock, limits).
"""
