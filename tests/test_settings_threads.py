"""OpenMP threads: one per question when serving, every core for a build.

One embedding thread per question keeps answers fast when many arrive at once (two
threads spin-wait for a busy core); `strategy-bot index` only embeds, so it takes every
core unless INDEX_THREADS says otherwise.
"""
from __future__ import annotations

import os

from strategy_bot.settings import Settings


def settings(**env: str) -> Settings:
    return Settings.from_env(env, dotenv=False)


def test_questions_use_embedding_threads_and_builds_every_core():
    default = settings()
    assert default.thread_count() == 1
    assert default.thread_count(batch=True) == (os.cpu_count() or 1)


def test_both_can_be_set():
    tuned = settings(EMBEDDING_THREADS="2", INDEX_THREADS="3")
    assert (tuned.thread_count(), tuned.thread_count(batch=True)) == (2, 3)


def test_the_limit_goes_to_openmp_unless_the_user_set_it(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    settings(INDEX_THREADS="3").apply_thread_limits(batch=True)
    assert os.environ["OMP_NUM_THREADS"] == "3"
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    settings(INDEX_THREADS="3").apply_thread_limits(batch=True)
    assert os.environ["OMP_NUM_THREADS"] == "5"
