"""0015: ``daily_entries.modified_at``, when the entry last changed (issue 13).

The web cache's data version (``store.feed_queries.data_version``) reads ``max()`` of it, so a
re-import that changes only an entry (the Hub's source object: its comment count, organization,
claimed authors) moves every worker's cache like a change to the paper does. Existing rows get
their ``submitted_at``. The schema sets it on every insert and update.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("daily_entries", sa.Column("modified_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE daily_entries SET modified_at = submitted_at")
    op.create_index("ix_daily_entries_modified_at", "daily_entries", ["modified_at"])


def downgrade() -> None:
    op.drop_index("ix_daily_entries_modified_at", table_name="daily_entries")
    op.drop_column("daily_entries", "modified_at")
