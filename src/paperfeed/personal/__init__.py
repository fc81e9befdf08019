"""The personal layer (issue 14): what one signed-in user follows, the papers they claim to have
written, their private feed token, and the views built for them alone ("Following").

Above ``community`` (it acts for a :class:`~paperfeed.community.core.User` and raises the
community errors the web layer already turns into pages and JSON) and below ``digest`` (the
digest's personal sections are built from it).
"""
