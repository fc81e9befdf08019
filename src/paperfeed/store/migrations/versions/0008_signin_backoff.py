"""0008: sign-in throttling with back-off instead of the per-account lockout (issue 10, item 4).

The lockout let anybody lock any account (usernames are public) with ten wrong passwords; its
columns on ``users`` go, and ``signin_failures`` holds back-off counters per (account, address)
and per address. Native ``ALTER TABLE ... DROP COLUMN`` (SQLite >= 3.35): a batch rebuild of
``users`` would drop the table with foreign keys on, cascading into votes and comments.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signin_failures",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", sa.Float(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_signin_failures_last_failure", "signin_failures", ["last_failure"], unique=False)
    op.drop_column("users", "failed_logins")
    op.drop_column("users", "locked_until")


def downgrade() -> None:
    op.add_column("users", sa.Column("locked_until", sa.DateTime(), nullable=True))
    op.add_column("users", sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False))
    op.drop_index("ix_signin_failures_last_failure", table_name="signin_failures")
    op.drop_table("signin_failures")
