"""The personal library (issue 14): collections of saved papers with private notes
(``collections.py``), feedback on papers - "not interested", "hide" (``feedback.py``) - and moving
collections in and out as BibTeX, RIS, CSL-JSON or a list of arXiv ids (``formats.py``,
``importer.py``).

Sits above ``community/`` (it acts for a signed-in :class:`~paperfeed.community.core.User` through
the same :class:`~paperfeed.community.core.Community` context and raises its errors) and below
``web/``. The SQL is in ``store/library_store.py``; the for-you ranker reads a user's signals
with :func:`paperfeed.store.library_store.user_signals`.
"""
