"""0011: scopes on personal API tokens (issue 10 item 3). A space-separated subset of
``read vote comment submit moderate``; tokens that exist already get every scope but
``moderate`` (which only a moderator or admin can grant, explicitly).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column("scopes", sa.String(length=200), server_default="read vote comment submit", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scopes")
