"""``python -m paperfeed.cli``: same as the ``paperfeed`` console script."""

from paperfeed.cli import main

main()
