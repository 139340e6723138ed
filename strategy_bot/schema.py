"""Every table of the bot's state, once, for SQLite and PostgreSQL alike (SQLAlchemy Core).

The stores (bot/state/, decision/dialogue_store.py) query these tables; the migrations under
strategy_bot/migrations/ create them. tests/test_database.py checks that an upgraded database
matches this module exactly on both engines, so a column added here without a migration fails.

Portable types only: TEXT for JSON (citations, answers), DOUBLE PRECISION for epoch seconds, and
LargeBinary (BYTEA / BLOB) for the files of index builds and uploads (a few MB each).
"""
from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)

metadata = MetaData()

# The threads the bot answers in (bot/state/conversations.py); `id` is the answer id feedback points to.
answers = Table(
    "answers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", Text, nullable=False),
    Column("thread_ts", Text, nullable=False),
    Column("question_ts", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text),
    Column("abstained", Boolean),
    Column("citations", Text),  # JSON list
    Column("reply_ts", Text),
    Column("created_at", Double, nullable=False),
    Column("build_id", Text),  # the index build that answered (0003): what a 👎 points at
    Index("answers_thread", "channel", "thread_ts", "id"),
    Index("answers_user", "user_id", "id"),  # a user's recent questions (App Home)
    Index("answers_created_at", "created_at"),  # the last 30 days (App Home, admins)
    sqlite_autoincrement=True,  # as before: an id is never reused, so feedback never points at another answer
)

# 👍/👎 clicks, one row per (answer, user) (bot/state/feedback.py).
feedback = Table(
    "feedback", metadata,
    Column("answer_id", Integer, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("vote", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("message_ts", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("citations", Text, nullable=False),  # JSON list
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("build_id", Text),  # the index build that answered (0003)
    Column("reason", Text),  # why a 👎 (0003): one of bot/state/feedback.py's REASONS
    Column("reason_text", Text),  # the voter's own words, bounded (0003)
    PrimaryKeyConstraint("answer_id", "user_id"),
)

# Who opened the App Home and when (0003): the homes republished after a re-index (bot/home.py).
home_visits = Table(
    "home_visits", metadata,
    Column("user_id", Text, primary_key=True),
    Column("opened_at", Double, nullable=False),
    Index("home_visits_opened_at", "opened_at"),
)

# /strategy-check questionnaires, one per thread (decision/dialogue_store.py). `version` grows by one on
# every save: a save based on an older version fails, so two clicks on two replicas cannot both advance it.
dialogues = Table(
    "dialogues", metadata,
    Column("channel_id", Text, nullable=False),
    Column("thread_ts", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("step", Integer, nullable=False),
    Column("answers", Text, nullable=False),  # JSON object
    Column("context", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("message_ts", Text, nullable=False),  # JSON object
    Column("version", Integer, nullable=False, server_default=text("1")),
    PrimaryKeyConstraint("channel_id", "thread_ts"),
    CheckConstraint("status IN ('active', 'finished', 'cancelled')", name="dialogues_status"),
    Index("dialogues_updated_at", "updated_at"),
)

# Slack event deliveries (exactly-once intake); the columns are a shared spec, see bot/state/deliveries.py.
deliveries = Table(
    "deliveries", metadata,
    Column("event_id", Text, primary_key=True),
    Column("body", Text, nullable=False),  # the event callback JSON recorded before the ack (<= 64 KB)
    Column("status", Text, nullable=False),  # 'pending' | 'done' | 'failed'
    Column("owner", Text),  # boot id of the process holding the lease
    Column("lease_until", Double),  # epoch seconds; a pending event whose lease passed is due again
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("deliveries", Integer, nullable=False, server_default=text("1")),  # times Slack delivered it
    Column("first_seen", Double, nullable=False),
    Column("finished_at", Double),
    Column("outcome", Text),  # 'answered' | 'already_posted' | a permanent Slack error code
    Column("reply_ts", Text),  # ts of the bot's answer once posted
    Index("deliveries_due", "status", "lease_until"),
    Index("deliveries_first_seen", "first_seen"),
)

# Streams being started for a delivery (0004), beside the deliveries table so its shared columns stay as they
# are: written just before chat.startStream, so a retry that finds no reply_ts knows a message may exist
# without metadata (Slack created it; its ts never came back, or was never noted) and looks for it.
stream_starts = Table(
    "stream_starts", metadata,
    Column("event_id", Text, primary_key=True),  # deliveries.event_id (no foreign key: forgotten on its own)
    Column("started_at", Double, nullable=False),  # epoch seconds of the last start (our clock)
    Index("stream_starts_started_at", "started_at"),
)

# Which files of an earlier install (one SQLite file per store) were copied in, so it happens once.
legacy_imports = Table(
    "legacy_imports", metadata,
    Column("source", Text, primary_key=True),
    Column("rows", Integer, nullable=False),
    Column("imported_at", Double, nullable=False),
)

# Index builds published for every replica (retrieval/build_registry.py): a build's files, byte for byte,
# as IndexStore wrote them under DATA_DIR/indexes/<build_id> (meta.json with the checksums among them),
# plus the translation cache of that moment (names `translations/...`). Only used with PostgreSQL.
index_builds = Table(
    "index_builds", metadata,
    Column("build_id", Text, primary_key=True),
    Column("built_at", Double, nullable=False),
    Column("built_by", Text, nullable=False),
    Column("meta", Text, nullable=False),  # the build's meta.json, as JSON text
    Column("published_at", Double, nullable=False),
)

index_files = Table(
    "index_files", metadata,
    Column("build_id", Text, ForeignKey("index_builds.build_id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("bytes", LargeBinary, nullable=False),
    PrimaryKeyConstraint("build_id", "name"),
)

# The build every replica serves: one row (id = 1), replaced in the transaction that publishes a build.
index_current = Table(
    "index_current", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("build_id", Text, ForeignKey("index_builds.build_id"), nullable=False),
    Column("updated_at", Double, nullable=False),
    CheckConstraint("id = 1", name="index_current_one_row"),
)

# Documents admins shared in Slack (knowledge/upload_registry.py), copied into each replica's upload folder
# before a build, so a build on any replica indexes every upload. `name` is the stored file name.
uploads = Table(
    "uploads", metadata,
    Column("name", Text, primary_key=True),
    Column("size", Integer, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("bytes", LargeBinary, nullable=False),
    Column("uploaded_by", Text, nullable=False),
    Column("uploaded_at", Double, nullable=False),
)
