"""0003: index ``embeddings.created_at`` (the time a vector was last written).

The vector index asks "what changed since T?" on every refresh; without this index that is a
full scan of the vector blobs (about 1.5 GB at one million papers).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_embeddings_created_at", "embeddings", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_embeddings_created_at", table_name="embeddings")
