"""0021: ``users.session_version`` goes. Password changes and bans bumped it so that old session
cookies would stop working; since 0010 sessions live in the ``sessions`` table and end by deleting
their rows, and nothing read the counter any more.

Native ``ALTER TABLE ... DROP COLUMN`` (SQLite >= 3.35), as in 0008: a batch rebuild of ``users``
would drop the table with foreign keys on, cascading into sessions, votes and comments
(tests/test_store_schema.py checks they survive).

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_column("users", "session_version")


def downgrade() -> None:
    op.add_column("users", sa.Column("session_version", sa.Integer(), server_default="0", nullable=False))
