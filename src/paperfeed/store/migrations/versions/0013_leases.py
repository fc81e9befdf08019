"""0013: one lease table for every lease (issue 13).

``leases`` replaces ``digest_locks``: the digest sender's lease and the pipeline leader's lease
follow one rule (``store/leases.py``). A lease also records when it was last renewed, and a
released lease stays as a row (expired) so status can say who held it last. A digest sender
holding the old lock during the upgrade keeps it: its row is copied.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=160), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("renewed_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        "INSERT INTO leases (name, holder, acquired_at, renewed_at, expires_at) "
        "SELECT name, owner, acquired_at, acquired_at, expires_at FROM digest_locks"
    )
    op.drop_table("digest_locks")


def downgrade() -> None:
    op.create_table(
        "digest_locks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        "INSERT INTO digest_locks (name, owner, acquired_at, expires_at) "
        "SELECT name, substr(holder, 1, 128), acquired_at, expires_at FROM leases"
    )
    op.drop_table("leases")
