"""0002: email digests - subscription options (weekdays only, manage nonce, confirmation rate
limit), delivery ledger columns (payload, retry back-off, claims), papers already mailed per
subscriber, and named leases for the single digest sender.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("weekdays_only", sa.Boolean(), server_default="1", nullable=False))
        batch.add_column(sa.Column("manage_nonce", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("confirm_sent_at", sa.DateTime(), nullable=True))
    # Existing rows get a manage nonce so their manage/unsubscribe links can be signed.
    op.execute("UPDATE subscriptions SET manage_nonce = token_nonce WHERE manage_nonce IS NULL")
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
    op.create_index("ix_deliveries_status", "deliveries", ["status", "next_attempt_at"], unique=False)
    op.create_table(
        "digest_sent_papers",
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("paper_id", sa.String(length=32), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("subscription_id", "paper_id"),
    )
    op.create_table(
        "digest_locks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("digest_locks")
    op.drop_table("digest_sent_papers")
    op.drop_index("ix_deliveries_status", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        for col in ("claimed_at", "claimed_by", "next_attempt_at", "payload"):
            batch.drop_column(col)
    with op.batch_alter_table("subscriptions") as batch:
        for col in ("confirm_sent_at", "manage_nonce", "weekdays_only"):
            batch.drop_column(col)
