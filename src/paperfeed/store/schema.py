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
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

from paperfeed.store.db import utcnow

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
    # 0007 (HF fidelity): the Hub's AI summary and keywords, and the author names it marks
    # hidden (never shown; ``authors`` never holds them).
    Column("ai_summary", Text),
    Column("ai_keywords", JSON),  # list[str]
    Column("hidden_authors", JSON),  # list[str]
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
    Column("created_at", DateTime, nullable=False),
    # 0012 (email verification): ``email`` holds only a confirmed address (unique, used for sign-in
    # and resets); a web sign-up's address waits in ``pending_email`` (not unique: typing someone
    # else's address must not tell whether it is registered) until its link is used.
    # ``verified_at`` is set then, or at creation for operator-made accounts; ``verify_nonce``
    # makes the newest link the only one that works.
    Column("pending_email", String(320)),
    Column("verified_at", DateTime),
    Column("verify_nonce", String(64)),
)
# 0004: "Alice" and "alice" are the same account name (no look-alike impersonation).
Index("uq_users_username_lower", func.lower(users.c.username), unique=True)

daily_entries = Table(
    "daily_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("paper_id", String(32), ForeignKey("papers.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("feed_date", Date, nullable=False),
    Column("submitter", Text),  # username (HF ``submittedBy.name`` or the local username)
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("submitted_at", DateTime, nullable=False),
    Column("source", String(16), nullable=False),  # hf|local
    Column("featured", Boolean, nullable=False, server_default="0"),
    Column("hidden", Boolean, nullable=False, server_default="0"),
    Column("hidden_reason", Text),
    # 0007 (HF fidelity): the whole entry as the Hub sent it (``paper`` included) and its hash,
    # the entry-level ``publishedAt`` (tie order on equal upvotes) and the submitter's display name.
    Column("hf_source", JSON),
    Column("hf_hash", String(64)),
    Column("published_at", DateTime),
    Column("submitter_fullname", Text),
    # 0009: the entry's place in the Hub's response for its day (the Hub's order on full ties).
    Column("hf_position", Integer),
    # 0015: when the entry last changed (any insert or update sets it): part of the web cache's
    # data version, so a change to the entry alone (the Hub's source object) moves it.
    Column("modified_at", DateTime, default=utcnow, onupdate=utcnow),
    Index("ix_daily_entries_feed_date", "feed_date"),
    Index("ix_daily_entries_modified_at", "modified_at"),
    Index("ix_daily_entries_user", "user_id", "submitted_at"),  # 0004: profiles, submission quota
)

votes = Table(
    "votes",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("paper_id", String(32), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_votes_paper", "paper_id"),
    Index("ix_votes_user", "user_id", "created_at"),  # 0004: a profile's upvotes, newest first
    Index("ix_votes_created_at", "created_at"),  # 0006: the newest vote, for the web cache's data version
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
    Index("ix_comments_user", "user_id"),  # 0004
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
    # 0002 (digests): daily digests skip Saturday/Sunday unless false; the manage/unsubscribe
    # link nonce (stable, unlike token_nonce); when the last confirmation mail was queued.
    Column("weekdays_only", Boolean, nullable=False, server_default="1"),
    Column("manage_nonce", String(64)),
    Column("confirm_sent_at", DateTime),
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
    # 0002 (digests): kind-specific data (a confirmation's requested settings), retry back-off,
    # and which sender process holds the row while it is ``sending``.
    Column("payload", JSON),
    Column("next_attempt_at", DateTime),
    Column("claimed_by", String(128)),
    Column("claimed_at", DateTime),
    UniqueConstraint("subscription_id", "period", name="uq_deliveries_sub_period"),
    Index("ix_deliveries_status", "status", "next_attempt_at"),
)

# Papers already put in a digest for a subscriber (reserved when the digest is composed), so no
# paper is ever mailed twice to the same person.
digest_sent_papers = Table(
    "digest_sent_papers",
    metadata,
    Column("subscription_id", Integer, ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True),
    Column("paper_id", String(32), primary_key=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id", ondelete="SET NULL")),
    Column("created_at", DateTime, nullable=False),
)

# 0013 (replaces 0002's digest_locks): named, expiring leases - the pipeline leader and the digest
# sender (store/leases.py). ``holder`` is ``host:pid:random``.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(160), nullable=False),
    Column("acquired_at", DateTime, nullable=False),
    Column("renewed_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

# 0017: every process that runs the pipeline says it is alive every few seconds, with the state of
# its own search indexes (``info``), so ``paperfeed status`` can show every node's index lag.
pipeline_nodes = Table(
    "pipeline_nodes",
    metadata,
    Column("holder", String(160), primary_key=True),  # the process's lease holder id
    Column("started_at", DateTime, nullable=False),
    Column("seen_at", DateTime, nullable=False),
    Column("info", JSON),
    Index("ix_pipeline_nodes_seen_at", "seen_at"),
)

# 0004 (community): personal API tokens for the write API, stored as sha256 of the token.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(80), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("prefix", String(16), nullable=False),  # first characters, so a user can tell tokens apart
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime),
    Column("revoked_at", DateTime),
    # 0011: what the token may do, space separated (read vote comment submit moderate)
    Column("scopes", String(200), nullable=False, server_default="read vote comment submit"),
    UniqueConstraint("token_hash", name="uq_api_tokens_hash"),
    Index("ix_api_tokens_user", "user_id"),
)

# 0010: server-side sign-in sessions. The cookie carries a random session id; only its sha256 is
# stored. Signing out deletes the row; a password change/reset or a ban deletes all of a user's.
sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),  # slides forward while the session is used
    Column("user_agent", String(200)),  # shown on /account so people can tell their browsers apart
    UniqueConstraint("token_hash", name="uq_sessions_hash"),
    Index("ix_sessions_user", "user_id"),
    Index("ix_sessions_expires_at", "expires_at"),
)

# 0004: single-use, expiring password-reset links (sha256 of the token at rest).
password_resets = Table(
    "password_resets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("used_at", DateTime),
    UniqueConstraint("token_hash", name="uq_password_resets_hash"),
    Index("ix_password_resets_user", "user_id"),
)

# 0004: every moderation/admin action (hide, ban, role change, feature), newest first.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime, nullable=False),
    Column("actor_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("actor_name", String(40)),  # kept when the actor's account is gone; "cli" for the command line
    Column("action", String(32), nullable=False),
    Column("target_type", String(16), nullable=False),  # comment|entry|user
    Column("target_id", String(64), nullable=False),
    Column("reason", Text),
    Column("details", JSON),
    Index("ix_audit_log_created_at", "created_at"),
)

# 0004: GCRA rate-limit state shared by every worker: one "theoretical arrival time"
# (epoch seconds) per bucket key such as ``vote:user:12`` or ``signin:ip:10.0.0.1``.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("tat", Float, nullable=False),
    Index("ix_rate_limits_tat", "tat"),
)

# 0008: sign-in failures with back-off (replaces the per-account lockout columns of users): one
# row per key such as ``pair:<hash of account and address>`` or ``ip:10.0.0.1``, epoch seconds.
signin_failures = Table(
    "signin_failures",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure", Float, nullable=False),
    Column("blocked_until", Float, nullable=False),
    Index("ix_signin_failures_last_failure", "last_failure"),
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
    Column("created_at", DateTime, nullable=False),  # when the vector was last written (updates bump it)
    Index("ix_embeddings_created_at", "created_at"),  # 0003: "what changed since T" for index refreshes
)

# 0005 (web): derived lookup tables for author pages and category feeds, rebuilt from papers by
# store/lookups.refresh (rows of papers modified after its watermark are checked directly,
# so a stale table never gives a wrong answer, only a slower one).
paper_authors = Table(
    "paper_authors",
    metadata,
    Column("paper_id", String(32), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("name_norm", Text, nullable=False),  # casefolded, accents stripped, spaces collapsed
    Index("ix_paper_authors_name_norm", "name_norm"),
)

paper_categories = Table(
    "paper_categories",
    metadata,
    Column("paper_id", String(32), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("category", String(32), primary_key=True),
    Column("listed", Date),  # copied from papers so a category's newest papers come off one index
    Index("ix_paper_categories_category_listed", "category", "listed"),
)

# 0014 (library): named collections of papers per user. Private unless ``public``; a public one is
# read at /c/<share_token> (random, unguessable, replaced when it is made private and public
# again). ``is_default`` marks the "Saved" collection the save button fills.
collections = Table(
    "collections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("slug", String(100), nullable=False),
    Column("is_default", Boolean, nullable=False, server_default="0"),
    Column("public", Boolean, nullable=False, server_default="0"),
    Column("share_token", String(64)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("user_id", "slug", name="uq_collections_user_slug"),
    UniqueConstraint("share_token", name="uq_collections_share_token"),
    Index("ix_collections_user", "user_id"),
)

# 0014: the papers of a collection, each with its owner's private note.
collection_items = Table(
    "collection_items",
    metadata,
    Column("collection_id", Integer, ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True),
    Column("paper_id", String(32), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("note", Text),
    Column("added_at", DateTime, nullable=False),
    Index("ix_collection_items_paper", "paper_id"),
    Index("ix_collection_items_added", "collection_id", "added_at"),
)

# 0014: a user's negative feedback on a paper: ``kind`` is ``not_interested`` (a signal for the
# ranker) or ``hidden`` (never shown in that user's feeds again). Undo deletes the row.
paper_feedback = Table(
    "paper_feedback",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("paper_id", String(32), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_paper_feedback_user", "user_id", "kind", "created_at"),
)
# 0014: import matches a DOI case-insensitively (DOIs are).
Index("ix_papers_doi_lower", func.lower(papers.c.doi))

# 0016 (personal, issue 14): what a user follows - an author (``value`` the name as given, ``key``
# its normalised form), an arXiv category, or a saved search (``key``: the lower-cased query and
# its ``mode``).
follows = Table(
    "follows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # author|category|search
    Column("value", Text, nullable=False),
    Column("key", String(400), nullable=False),
    Column("mode", String(16)),  # searches: keyword|semantic|hybrid
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("user_id", "kind", "key", name="uq_follows_user_kind_key"),
    Index("ix_follows_kind_key", "kind", "key"),
)

# 0016: "I wrote this paper (as NAME)": pending until a moderator confirms or rejects it.
authorship_claims = Table(
    "authorship_claims",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("paper_id", String(32), ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("author_name", Text, nullable=False),  # as the paper lists it
    Column("name_norm", Text, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),  # pending|confirmed|rejected
    Column("created_at", DateTime, nullable=False),
    Column("decided_at", DateTime),
    Column("decided_by", String(40)),  # the moderator's username
    Column("reason", Text),
    UniqueConstraint("user_id", "paper_id", name="uq_claims_user_paper"),
    Index("ix_claims_status", "status", "created_at"),
    Index("ix_claims_name_norm", "name_norm"),
)

# 0016: the secret of a user's private feed URLs (sha256 at rest); a revoked row stays so its URL
# answers 410 Gone.
feed_tokens = Table(
    "feed_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime),
    Column("revoked_at", DateTime),
    UniqueConstraint("token_hash", name="uq_feed_tokens_hash"),
    Index("ix_feed_tokens_user", "user_id"),
)

# 0018: a user's personal settings: the for-you dials (None: the ranker's default), exclusions
# (and whether they also filter the daily feed and the digest), the last reset of what the ranker
# learned, and the personal digest sections.
personal_settings = Table(
    "personal_settings",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("popularity", Float),
    Column("recency", Float),
    Column("learn_from_upvotes", Boolean, nullable=False, server_default="1"),
    Column("exclude_words", JSON),  # list[str]
    Column("exclude_categories", Text),  # space separated
    Column("filter_daily", Boolean, nullable=False, server_default="0"),
    Column("filter_digest", Boolean, nullable=False, server_default="0"),
    Column("reset_at", DateTime),  # upvotes and "not interested" before this are forgotten
    Column("digest_for_you", Boolean, nullable=False, server_default="0"),
    Column("digest_threshold", Float),  # relevance 0..1; None: the default
    Column("digest_following", Boolean, nullable=False, server_default="0"),
    Column("updated_at", DateTime, nullable=False),
)

user_models = Table(
    "user_models",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # of the signals and settings it was fitted from
    Column("background_day", Date),  # newest listing day of the background it was fitted against
    Column("model", LargeBinary, nullable=False),  # paperfeed.recs.persisted.dumps
    Column("fitted_at", DateTime, nullable=False),
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
    "digest_sent_papers",
    "leases",
    "pipeline_nodes",
    "ingest_state",
    "embeddings",
    "api_tokens",
    "password_resets",
    "sessions",
    "audit_log",
    "rate_limits",
    "signin_failures",
    "paper_authors",
    "paper_categories",
    "collections",
    "collection_items",
    "paper_feedback",
    "follows",
    "authorship_claims",
    "feed_tokens",
    "personal_settings",
    "user_models",
]
