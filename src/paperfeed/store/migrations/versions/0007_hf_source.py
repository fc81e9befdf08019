"""0007: keep every field of imported Hugging Face entries.

Papers get the AI summary/keywords and the author names the Hub marks hidden; daily entries get
the source entry object (JSON), its hash (idempotent re-import), the entry-level ``publishedAt``
(the Hub's tie order) and the submitter's display name (``submitter`` now holds the username).
Existing entries keep working without them; re-running ``paperfeed import hf-daily`` fills them.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.add_column(sa.Column("ai_summary", sa.Text(), nullable=True))
        batch.add_column(sa.Column("ai_keywords", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("hidden_authors", sa.JSON(), nullable=True))
    with op.batch_alter_table("daily_entries") as batch:
        batch.add_column(sa.Column("hf_source", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("hf_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("published_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("submitter_fullname", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("daily_entries") as batch:
        for col in ("submitter_fullname", "published_at", "hf_hash", "hf_source"):
            batch.drop_column(col)
    with op.batch_alter_table("papers") as batch:
        for col in ("hidden_authors", "ai_keywords", "ai_summary"):
            batch.drop_column(col)
