"""0012: email verification at sign-up (issue 10).

``users.pending_email`` holds a web sign-up's address until its confirmation link is used (then
it moves to the unique ``email``), ``verified_at`` says when, ``verify_nonce`` keeps only the
newest link valid. Accounts that exist already count as confirmed (``verified_at`` = creation).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("pending_email", sa.String(length=320), nullable=True))
    op.add_column("users", sa.Column("verified_at", sa.DateTime(), nullable=True))
    op.add_column("users", sa.Column("verify_nonce", sa.String(length=64), nullable=True))
    op.execute("UPDATE users SET verified_at = created_at")


def downgrade() -> None:
    op.drop_column("users", "verify_nonce")
    op.drop_column("users", "verified_at")
    op.drop_column("users", "pending_email")
