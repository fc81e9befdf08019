"""0019: pgvector, where the PostgreSQL server has it (issue 13).

On PostgreSQL with the ``vector`` extension available: ``CREATE EXTENSION vector``, the column
``embeddings.hvec halfvec(384)``, a partial index of rows still to fill, and - when the table
holds at most 20,000 vectors - the filled column and its HNSW index (cosine). Everywhere else
(SQLite, PostgreSQL without pgvector) nothing changes. ``paperfeed db enable-pgvector`` does the
same later or for larger tables (store/pgvector.py).

Revision ID: 0019
Revises: 0018
"""

from alembic import op

from paperfeed.store import pgvector

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pgvector.migrate(op.get_bind())


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {pgvector.HNSW_INDEX}")
        op.execute(f"DROP INDEX IF EXISTS {pgvector.MISSING_INDEX}")
        op.execute(f"ALTER TABLE embeddings DROP COLUMN IF EXISTS {pgvector.COLUMN}")
