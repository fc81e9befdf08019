"""Email digests: double opt-in subscriptions, composition, the delivery ledger and sender,
and the scheduler that ``paperfeed serve`` runs. See ``send.py`` for the delivery guarantee."""
