"""Table definitions (SQLAlchemy Core), portable across SQLite and PostgreSQL.

This is the shape the code queries against; the Alembic migrations in ``migrations/`` create it.
A test checks that a migrated database matches these definitions.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

papers = Table(
    "papers",
    metadata,
    Column("id", String(32), primary_key=True),  # arXiv id without version
    Column("version", Integer, nullable=False, server_default="1"),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False, server_default=""),
    Column("authors", JSON, nullable=False),  # list[str], in order
    Column("categories", Text, nullable=False, server_default=""),  # space separated, primary first
    Column("primary_category", String(32)),
    Column("comments", Text),
    Column("doi", Text),
    Column("journal_ref", Text),
    Column("license", Text),
    Column("submitter", Text),
    Column("published", Date),  # first version
    Column("updated", Date),  # latest version
    Column("listed", Date),  # first arXiv listing ("new on arXiv")
    Column("github_repo", Text),
    Column("github_stars", Integer),
    Column("project_page", Text),
    Column("imported_upvotes", Integer, nullable=False, server_default="0"),
    Column("upvotes", Integer, nullable=False, server_default="0"),  # local votes, kept equal to vote rows
    Column("num_comments", Integer, nullable=False, server_default="0"),
    Column("content_hash", String(64), nullable=False),  # title+abstract: drives re-embedding
    Column("arxiv_hash", String(64)),  # arXiv-owned fields: drives idempotent re-import
    Column("hf_hash", String(64)),  # HF-owned fields
    Column("created_at", DateTime, nullable=False),
    Column("modified_at", DateTime, nullable=False),
    Index("ix_papers_published", "published"),
    Index("ix_papers_listed", "listed"),
    Index("ix_papers_primary_category", "primary_category"),
    Index("ix_papers_modified_at", "modified_at"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(40), nullable=False, unique=True),
    Column("email", String(320), unique=True),
    Column("password_hash", Text),
    Column("role", String(16), nullable=False, server_default="user"),  # user|moderator|admin
    Column("banned", Boolean, nullable=False, server_default="0"),
    Column("session_version", Integer, nullable=False, server_default="0"),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime),
    Column("created_at", DateTime, nullable=False),
)

daily_entries = Table(
    "daily_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("paper_id", String(32), ForeignKey("papers.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("feed_date", Date, nullable=False),
    Column("submitter", Text),  # display name (imported HF submitter or local username)
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("submitted_at", DateTime, nullable=False),
    Column("source", String(16), nullable=False),  # hf|local
    Column("featured", Boolean, nullable=False, server_default="0"),
    Column("hidden", Boolean, nullable=False, server_default="0"),
    Column("hidden_reason", Text),
    Index("ix_daily_entries_feed_date", "feed_date"),
)

votes = Table(
    "votes",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("paper_id", String(32), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_votes_paper", "paper_id"),
)

comments = Table(
    "comments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("paper_id", String(32), ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("parent_id", Integer, ForeignKey("comments.id", ondelete="CASCADE")),
    Column("body", Text, nullable=False),  # Markdown source
    Column("body_html", Text, nullable=False),  # rendered + sanitised
    Column("created_at", DateTime, nullable=False),
    Column("edited_at", DateTime),
    Column("deleted", Boolean, nullable=False, server_default="0"),
    Column("hidden", Boolean, nullable=False, server_default="0"),
    Column("hidden_reason", Text),
    Index("ix_comments_paper", "paper_id"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("frequency", String(16), nullable=False, server_default="daily"),  # daily|weekly
    Column("query", Text),  # saved search
    Column("categories", Text),  # space separated
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("send_hour", Integer, nullable=False, server_default="8"),
    Column("status", String(16), nullable=False, server_default="pending"),  # pending|active|unsubscribed|suppressed
    Column("token_nonce", String(64), nullable=False),  # rotating: invalidates old confirm links
    Column("hard_bounces", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime, nullable=False),
    Column("confirmed_at", DateTime),
    UniqueConstraint("email", name="uq_subscriptions_email"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscription_id", Integer, ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False),
    Column("period", String(32), nullable=False),  # e.g. daily:2026-11-23, weekly:2026-W48
    Column("status", String(16), nullable=False),  # pending|sent|failed|empty|retry
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("paper_ids", JSON),
    Column("message_id", Text),
    Column("error", Text),
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    UniqueConstraint("subscription_id", "period", name="uq_deliveries_sub_period"),
)

ingest_state = Table(
    "ingest_state",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("cursor", Text),
    Column("updated_at", DateTime, nullable=False),
    Column("info", JSON),
)

embeddings = Table(
    "embeddings",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("paper_id", String(32), ForeignKey("papers.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("model", String(128), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float32, L2-normalised
    Column("created_at", DateTime, nullable=False),
)

__all__ = [
    "metadata",
    "papers",
    "users",
    "daily_entries",
    "votes",
    "comments",
    "subscriptions",
    "deliveries",
    "ingest_state",
    "embeddings",
]
