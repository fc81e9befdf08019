"""``python -m paperfeed``: same as the ``paperfeed`` console script."""

from paperfeed.cli import main

main()
