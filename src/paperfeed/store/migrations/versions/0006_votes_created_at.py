"""0006: index votes by time, so the web cache's data version can read the newest vote cheaply
(a vote and an unvote by two users leave the count unchanged; the newest vote time moves).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_votes_created_at", "votes", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_votes_created_at", table_name="votes")
