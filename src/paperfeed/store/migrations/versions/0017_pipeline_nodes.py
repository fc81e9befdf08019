"""0017: ``pipeline_nodes``, the heartbeat of every process that runs the pipeline (issue 13).

Each ``paperfeed serve`` process records itself every few seconds with the state of its own search
indexes, so ``paperfeed status`` on any machine shows the leader and every node's index lag.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_nodes",
        sa.Column("holder", sa.String(length=160), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("info", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("holder"),
    )
    op.create_index("ix_pipeline_nodes_seen_at", "pipeline_nodes", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pipeline_nodes_seen_at", table_name="pipeline_nodes")
    op.drop_table("pipeline_nodes")
