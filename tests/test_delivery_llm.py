"""Leases and idempotent posting with an LLM writing the answer (slow: many leases long), over the wire.

Two bots (real Bolt apps in HTTP mode, each with its own delivery log and boot id) share one
DATA_DIR, as two processes would; the LLM is the fake OpenAI-compatible server.
"""
from __future__ import annotations

import json
import time
from typing import Iterator

import pytest
from slack_sdk import WebClient

from bot.state.deliveries import DeliveryLog
from fake_openai import FakeOpenAI, Reply
from retrieval.service import KnowledgeBase
from slack_harness import BOT_USER_ID, FakeSlackAPI, bot_settings, event_payload, mention_event, running_bot
from strategy_bot.migrate import open_state
from strategy_bot.settings import Settings

KEY = "sk-test-delivery"
LEASE_S = 2.0  # renewed every lease/3: a margin a busy 2-core machine keeps (1 s was taken over once)
WRITTEN = ("Open-sourcing moves the cost from licences to deployment and operations [1]. "
           "Closed models keep the intellectual property in-house [2].")


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def llm_kb(built_data_dir, e5, fake_llm) -> KnowledgeBase:
    """The shipped corpus's index, answering through the fake LLM server."""
    base = KnowledgeBase(Settings(data_dir=built_data_dir, **_llm(fake_llm)), e5)
    base.ensure_index()
    return base


def _llm(fake: FakeOpenAI) -> dict:
    return dict(llm_provider="openai", llm_model="fake-model", llm_api_key=KEY, llm_base_url=fake.url,
                llm_max_retries=0, llm_timeout_s=10.0)


def _final(call) -> bool:
    return "*Sources*" in json.dumps(call.body.get("blocks"), ensure_ascii=False)


def test_a_retry_on_another_process_while_the_llm_writes_for_several_leases_is_dropped(tmp_path, llm_kb, fake_llm):
    fake_llm.reply(Reply(WRITTEN, chunk_chars=10, chunk_delay_s=0.6))  # about 8 s: four leases
    with FakeSlackAPI() as slack:
        settings = bot_settings(tmp_path / "data", slack, delivery_lease_s=LEASE_S, **_llm(fake_llm))
        with running_bot(settings, kb=llm_kb) as first, running_bot(settings, kb=llm_kb) as second:
            event = mention_event(f"<@{BOT_USER_ID}> What does open-sourcing a model cost?")
            payload = event_payload(event)
            assert first.send_event(payload).status == 200
            slack.wait_for("chat.postMessage", timeout=30)  # the placeholder: the LLM is writing
            time.sleep(2 * LEASE_S)
            assert second.send_event(payload, retry_num=1).status == 200  # the retry lands on the other one
            final = slack.wait_for("chat.update", where=_final, timeout=60)[0]
            slack.settle(quiet=2 * LEASE_S + 0.5)
            posts = [c for c in slack.calls("chat.postMessage") if c.body.get("thread_ts") == event["ts"]]
            assert len(posts) == 1 and len(fake_llm.requests) == 1  # one message, written once
            assert final.body["ts"] == slack.ts_of(posts[0])
            assert final.body["metadata"]["event_payload"]["complete"] is True
            record = second.services.deliveries.get(json.loads(payload)["event_id"])
            assert (record.status, record.attempts, record.deliveries) == ("done", 1, 2)


def test_a_placeholder_left_by_a_dead_process_is_filled_in_not_posted_again(tmp_path, llm_kb, fake_llm):
    fake_llm.reply(WRITTEN)
    with FakeSlackAPI() as slack:
        settings = bot_settings(tmp_path / "data", slack, delivery_lease_s=LEASE_S, **_llm(fake_llm))
        event = mention_event(f"<@{BOT_USER_ID}> What does open-sourcing a model cost?")
        payload = json.loads(event_payload(event))
        # A process recorded the event, posted its placeholder, and died before the answer.
        state = open_state(settings)
        dead = DeliveryLog(state, lease_s=LEASE_S, boot_id="dead-process")
        assert dead.receive(payload["event_id"], payload) is not None
        dead.close()
        state.dispose()
        placeholder = WebClient(token=slack.token, base_url=slack.api_url).chat_postMessage(
            channel=event["channel"], thread_ts=event["ts"], text="Writing…",
            metadata={"event_type": "strategy_bot_answer",
                      "event_payload": {"event_id": payload["event_id"], "complete": False}})["ts"]
        with running_bot(settings, kb=llm_kb) as bot:  # the restart: its resumer takes the event over
            final = slack.wait_for("chat.update", where=_final, timeout=60)[0]
            slack.settle(quiet=0.5)
            assert final.body["ts"] == placeholder
            assert len(slack.calls("chat.postMessage")) == 1  # only the dead process's placeholder
            assert slack.calls("conversations.replies")[0].body.get("include_all_metadata") in {"1", "true", True}
            record = bot.services.deliveries.get(payload["event_id"])
            assert (record.status, record.outcome, record.reply_ts, record.attempts) == (
                "done", "answered", placeholder, 2)
