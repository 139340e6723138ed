"""Who opened the App Home, and when: whose home a re-index republishes.

Slack keeps a published home view until the app publishes another, so after a re-index the
homes people have seen would show the old document count. Republishing every user's home would
cost one `views.publish` per workspace member; only those who opened it recently (at most
`limit`, newest first) are republished, the others get a fresh one when they next open it.
"""
from __future__ import annotations

import time

from sqlalchemy import Engine, delete, select

from strategy_bot.database import insert
from strategy_bot.schema import home_visits

KEEP_SECONDS = 30 * 24 * 3600  # a visit older than this is forgotten (their home refreshes on the next open)


class HomeVisits:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def opened(self, user_id: str, now: float | None = None) -> None:
        stamp = time.time() if now is None else now
        upsert = insert(self.engine, home_visits).values(user_id=user_id, opened_at=stamp)
        upsert = upsert.on_conflict_do_update(index_elements=[home_visits.c.user_id],
                                              set_={"opened_at": upsert.excluded.opened_at})
        with self.engine.begin() as connection:
            connection.execute(upsert)
            connection.execute(delete(home_visits).where(home_visits.c.opened_at < stamp - KEEP_SECONDS))

    def recent(self, limit: int, now: float | None = None) -> list[str]:
        """The users who opened their home in the last KEEP_SECONDS, newest first, at most `limit`."""
        since = (time.time() if now is None else now) - KEEP_SECONDS
        query = (select(home_visits.c.user_id).where(home_visits.c.opened_at >= since)
                 .order_by(home_visits.c.opened_at.desc()).limit(limit))
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())
