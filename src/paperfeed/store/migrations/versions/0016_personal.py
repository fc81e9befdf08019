"""0016: the personal layer (issue 14): follows, authorship claims, private feed tokens.

``follows``: what a user follows - an author (the name as given; ``key`` is its normalised form),
an arXiv category, or a saved search (``key`` is the query, lower-cased, and its mode). One row
per (user, kind, key).
``authorship_claims``: a user says they wrote a paper under a name; a moderator confirms or
rejects it (the decision is also written to the audit log).
``feed_tokens``: the secret in a user's private feed URLs, stored as its sha256; revoked tokens
stay (so their URLs answer 410 Gone instead of 404).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("mode", sa.String(16)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "kind", "key", name="uq_follows_user_kind_key"),
    )
    op.create_index("ix_follows_kind_key", "follows", ["kind", "key"])
    op.create_table(
        "authorship_claims",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("paper_id", sa.String(32), sa.ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("author_name", sa.Text(), nullable=False),
        sa.Column("name_norm", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime()),
        sa.Column("decided_by", sa.String(40)),
        sa.Column("reason", sa.Text()),
        sa.UniqueConstraint("user_id", "paper_id", name="uq_claims_user_paper"),
    )
    op.create_index("ix_claims_status", "authorship_claims", ["status", "created_at"])
    op.create_index("ix_claims_name_norm", "authorship_claims", ["name_norm"])
    op.create_table(
        "feed_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime()),
        sa.Column("revoked_at", sa.DateTime()),
        sa.UniqueConstraint("token_hash", name="uq_feed_tokens_hash"),
    )
    op.create_index("ix_feed_tokens_user", "feed_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_feed_tokens_user", "feed_tokens")
    op.drop_table("feed_tokens")
    op.drop_index("ix_claims_name_norm", "authorship_claims")
    op.drop_index("ix_claims_status", "authorship_claims")
    op.drop_table("authorship_claims")
    op.drop_index("ix_follows_kind_key", "follows")
    op.drop_table("follows")
