"""0009: the place of an imported entry in the Hub's response for its day.

The Hub orders a day by upvotes, then by the entry-level ``publishedAt`` (later first); entries
equal on both come in an order no field explains, so the importer keeps each entry's position
and the API uses it as the last tie-break.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("daily_entries") as batch:
        batch.add_column(sa.Column("hf_position", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("daily_entries") as batch:
        batch.drop_column("hf_position")
