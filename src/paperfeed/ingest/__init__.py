"""Paper ingest: arXiv metadata files, Hugging Face daily-paper dumps and the arXiv OAI-PMH feed.

Every source is parsed into :class:`paperfeed.records.PaperRecord` (plus, for HF, a daily
entry) and written by the batched upserts in :mod:`paperfeed.store.papers`. Runs from the CLI
(``paperfeed import ...``, ``paperfeed harvest arxiv``) and from the community "submit a paper" path
(:func:`paperfeed.ingest.oai.fetch_record`, :func:`paperfeed.records.parse_arxiv_id`).
"""
