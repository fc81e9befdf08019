"""0018: a user's personal settings (issue 14): the for-you dials (popularity and recency
weights, learning from upvotes, when the ranker was last reset), the words and categories to
exclude (and whether they also filter the daily feed and the digest), and the personal digest
sections (for-you with its relevance threshold, following).

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "personal_settings",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("popularity", sa.Float()),
        sa.Column("recency", sa.Float()),
        sa.Column("learn_from_upvotes", sa.Boolean(), nullable=False, server_default="1"),
        sa.Column("exclude_words", sa.JSON()),
        sa.Column("exclude_categories", sa.Text()),
        sa.Column("filter_daily", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("filter_digest", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("reset_at", sa.DateTime()),
        sa.Column("digest_for_you", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("digest_threshold", sa.Float()),
        sa.Column("digest_following", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("personal_settings")
