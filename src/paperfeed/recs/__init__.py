"""The personal "for you" ranking: per-user models on paper text and embeddings
(:mod:`paperfeed.recs.model`), the ranker the pages, feeds and digests call
(:mod:`paperfeed.recs.ranker`), and the offline evaluation behind ``paperfeed eval-recs``
(:mod:`paperfeed.recs.protocol`, :mod:`paperfeed.recs.metrics`, :mod:`paperfeed.recs.evaluate`)."""
