"""0005: web - derived lookup tables for author pages (paper_authors) and category feeds
(paper_categories); filled by ``store.feed_helpers.refresh``.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paper_authors",
        sa.Column("paper_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_norm", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("paper_id", "position"),
    )
    op.create_index("ix_paper_authors_name_norm", "paper_authors", ["name_norm"])
    op.create_table(
        "paper_categories",
        sa.Column("paper_id", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("listed", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("paper_id", "category"),
    )
    op.create_index("ix_paper_categories_category_listed", "paper_categories", ["category", "listed"])


def downgrade() -> None:
    op.drop_index("ix_paper_categories_category_listed", table_name="paper_categories")
    op.drop_table("paper_categories")
    op.drop_index("ix_paper_authors_name_norm", table_name="paper_authors")
    op.drop_table("paper_authors")
