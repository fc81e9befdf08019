"""The pipeline that keeps a paperfeed current by itself: one leader among every ``paperfeed serve``
process (a database lease) harvests arXiv on its announcement schedule, embeds new and changed
papers, and runs the digest scheduler; ``status`` says what it is doing. Sits above ``ingest``,
``search`` and ``digest``, below ``web`` (which starts it) and ``cli`` (``paperfeed status``)."""
