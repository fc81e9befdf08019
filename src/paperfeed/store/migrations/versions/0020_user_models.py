"""0020: each user's fitted "for you" model (issue 14), so that any process ranks with it and a
digest run scores instead of refitting: the model's bytes, the fingerprint of the signals and
settings it was fitted from (a different fingerprint means refit), and the newest listing day
of the background sample it was fitted against.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_models",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("background_day", sa.Date()),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("fitted_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("user_models")
