"""paperfeed: a self-hostable research-paper discovery service.

Data flows one way: ingest -> store -> search/feed -> web, api, digest.
"""

__version__ = "0.1.0"
