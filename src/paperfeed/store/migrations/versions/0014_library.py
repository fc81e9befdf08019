"""0014: the personal library (issue 14): collections, their papers with a private note, and
per-user feedback on papers (``not_interested``, ``hidden``); an index for matching DOIs on import.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("public", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("share_token", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "slug", name="uq_collections_user_slug"),
        sa.UniqueConstraint("share_token", name="uq_collections_share_token"),
    )
    op.create_index("ix_collections_user", "collections", ["user_id"])
    op.create_table(
        "collection_items",
        sa.Column(
            "collection_id", sa.Integer(), sa.ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("paper_id", sa.String(length=32), sa.ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("added_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_collection_items_paper", "collection_items", ["paper_id"])
    op.create_index("ix_collection_items_added", "collection_items", ["collection_id", "added_at"])
    op.create_table(
        "paper_feedback",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("paper_id", sa.String(length=32), sa.ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_paper_feedback_user", "paper_feedback", ["user_id", "kind", "created_at"])
    op.create_index("ix_papers_doi_lower", "papers", [sa.text("lower(doi)")])


def downgrade() -> None:
    op.drop_index("ix_papers_doi_lower", table_name="papers")
    op.drop_index("ix_paper_feedback_user", table_name="paper_feedback")
    op.drop_table("paper_feedback")
    op.drop_index("ix_collection_items_added", table_name="collection_items")
    op.drop_index("ix_collection_items_paper", table_name="collection_items")
    op.drop_table("collection_items")
    op.drop_index("ix_collections_user", table_name="collections")
    op.drop_table("collections")
