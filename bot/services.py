"""Everything the Slack listeners need, built once per process and handed to each listener module.

Listeners get a `Services` instead of building their own knowledge base or stores:
one loaded model and index per process, one state database engine (SQLite or PostgreSQL,
strategy_bot/database.py) shared by the stores, and tests
can give the real server an already-loaded `KnowledgeBase`. Features add their own
store as a field here (with a default) and build it in `build_services`.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from bot.state.conversations import ConversationLog
from bot.state.deliveries import DeliveryLog
from bot.state.feedback import FeedbackLog
from bot.state.home_visits import HomeVisits
from decision.dialogue_store import DialogueStore
from retrieval.build_registry import BuildFollower
from retrieval.embeddings import EmbeddingError
from retrieval.index_store import IndexError_
from retrieval.service import KnowledgeBase
from strategy_bot.migrate import open_state
from strategy_bot.settings import Settings

if TYPE_CHECKING:  # a listener module; imported for the annotation only
    from bot.listeners.strategy_check import StrategyCheck

log = logging.getLogger(__name__)


@dataclass
class IndexReadiness:
    """Whether the knowledge base has loaded its index: what `/healthz` reports."""

    loaded: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


@dataclass
class Services:
    settings: Settings
    kb: KnowledgeBase
    deliveries: DeliveryLog
    conversations: ConversationLog
    feedback: FeedbackLog
    readiness: IndexReadiness = field(default_factory=IndexReadiness)
    # Runs Bolt's listeners after the ack; sized by SLACK_WORKERS.
    executor: ThreadPoolExecutor | None = None
    # /strategy-check questionnaires, one per thread (bot/listeners/strategy_check.py).
    dialogues: DialogueStore | None = None
    # The state database the stores share; /healthz checks it answers.
    database: Engine | None = None
    # On a shared (PostgreSQL) database: the listener that swaps in builds other replicas publish.
    follower: BuildFollower | None = None
    # Who opened the App Home: whose home a re-index republishes (bot/home.py).
    home_visits: HomeVisits | None = None
    # The /strategy-check feature, set when its listeners register: the agent view starts dialogues through it.
    strategy_check: StrategyCheck | None = None

    def load_index_in_background(self) -> threading.Thread:
        """Load (or first build) the index without holding up the HTTP server's start; on a shared
        database, then follow the builds other replicas publish (retrieval/build_registry.py)."""
        thread = threading.Thread(target=self._load_then_follow, name="index-loader", daemon=True)
        thread.start()
        return thread

    def _load_then_follow(self) -> None:
        self.load_index()
        shared = self.kb.shared
        if shared is not None and self.follower is None:
            self.follower = BuildFollower(shared[0].engine, lambda: self.kb.refresh(wait=True)).start()

    def load_index(self) -> None:
        try:
            self.kb.ensure_index()
        except (IndexError_, EmbeddingError) as exc:  # worded for people: what is wrong, how to fix it
            self.readiness.error = str(exc)
            log.error("could not load the index: %s", exc)
        except Exception as exc:  # reported by /healthz and the log; questions retry the load
            # Only the type: a library's own message (FAISS's is C++) means nothing to the reader.
            self.readiness.error = f"the index could not be loaded ({type(exc).__name__}); the log has the details"
            log.exception("could not load the index")
        else:
            self.readiness.error = None
            self.readiness.loaded.set()

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=False)
        for store in (self.deliveries, self.conversations, self.feedback):
            store.close()
        if self.dialogues is not None:
            self.dialogues.close()
        if self.database is not None:
            self.database.dispose()


def build_services(settings: Settings, kb: KnowledgeBase | None = None) -> Services:
    """The process's services; pass `kb` to share an already-loaded knowledge base (tests)."""
    database = open_state(settings)  # upgrades the embedded SQLite file; a shared database must be current
    kb = kb if kb is not None else KnowledgeBase(settings, database=database)
    return Services(
        settings=settings,
        kb=kb,
        deliveries=DeliveryLog(database, lease_s=settings.delivery_lease_s),
        # Each answer records the build that answered it (loaded_build never loads or builds an index).
        conversations=ConversationLog(database, current_build=lambda: kb.loaded_build),
        feedback=FeedbackLog(database),
        dialogues=DialogueStore(database),
        home_visits=HomeVisits(database),
        database=database,
        executor=ThreadPoolExecutor(max_workers=settings.slack_workers, thread_name_prefix="slack-listener"),
    )
