"""The Slack front end's persistent state and request parsing, without a server."""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterator
from urllib.parse import urlencode

import pytest
from slack_bolt.request import BoltRequest
from sqlalchemy import update

from bot.bolt_request import FormSafeBoltRequest, MalformedBody, parse_slack_body
from bot.state.conversations import ConversationLog
from bot.state.deliveries import KEEP_SECONDS, MAX_BODY_BYTES, DeliveryLog
from bot.state.feedback import FeedbackLog
from slack_harness import block_action_payload, slash_payload
from strategy_bot.database import open_engine
from strategy_bot.schema import deliveries

BODY = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention", "text": "hi"}}


@pytest.fixture
def processes(state_url) -> Iterator[Callable[..., DeliveryLog]]:
    """Delivery logs as separate processes would hold them: each its own engine on the one state database
    (conftest.state_url: a SQLite file, then PostgreSQL)."""
    opened: list[tuple[DeliveryLog, object]] = []

    def process(**kwargs) -> DeliveryLog:
        engine = open_engine(state_url)
        log = DeliveryLog(engine, **kwargs)
        opened.append((log, engine))
        return log

    yield process
    for log, engine in opened:
        log.close()
        engine.dispose()


def test_an_event_is_claimed_once_even_by_racing_threads(processes):
    logs = [processes(), processes()]  # two processes, eight threads each
    wins: list[object] = []
    threads = [threading.Thread(target=lambda i=i: wins.append(logs[i % 2].receive("Ev1", BODY))) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([w for w in wins if w is not None]) == 1
    assert logs[0].status("Ev1") == ("pending", 16)
    assert logs[1].body("Ev1") == BODY  # recorded: a crash now loses nothing


def test_a_due_event_is_taken_over_once_by_racing_processes(processes):
    logs = [processes(lease_s=0.3) for _ in range(4)]
    for n in range(20):
        logs[0].receive(f"Ev{n}", {**BODY, "event_id": f"Ev{n}"})
    logs[0].close()  # it dies: no heartbeat
    time.sleep(0.4)
    claims: list[tuple[int, str]] = []

    def resume(i: int) -> None:
        for event_id in logs[i].due():
            if logs[i].claim(event_id) is not None:
                claims.append((i, event_id))

    threads = [threading.Thread(target=resume, args=(i,)) for i in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(e for _, e in claims) == sorted(f"Ev{n}" for n in range(20))  # each exactly once
    assert all(logs[1].get(e).owner == logs[i].boot_id and logs[1].get(e).attempts == 2 for i, e in claims)


def test_a_finished_event_stays_a_duplicate_after_a_restart(processes):
    first = processes()
    assert first.receive("Ev1", BODY).attempt == 1
    first.finish("Ev1", "answered", "123.456")
    first.close()
    again = processes()
    assert again.receive("Ev1", BODY) is None and again.due() == []
    record = again.get("Ev1")
    assert (record.status, record.outcome, record.reply_ts, record.deliveries) == ("done", "answered", "123.456", 2)


def test_a_stream_mark_is_seen_by_another_process_and_a_noted_reply_belongs_to_its_event(processes):
    first, second = processes(), processes()
    first.receive("Ev1", BODY)
    first.receive("Ev2", {**BODY, "event_id": "Ev2"})
    assert second.stream_mark("Ev1") is None
    before = time.time()
    first.mark_stream("Ev1")  # about to call chat.startStream; then the process dies
    assert before <= second.stream_mark("Ev1") <= time.time() and second.stream_mark("Ev2") is None
    first.note_reply("Ev2", "1000.000200")
    assert second.replied_elsewhere("1000.000200", "Ev1") and not second.replied_elsewhere("1000.000200", "Ev2")
    assert not second.replied_elsewhere("1000.000300", "Ev1")


def test_a_live_lease_is_not_taken_over_but_an_expired_one_is_once(processes):
    first = processes(lease_s=0.6)
    second = processes(lease_s=0.6)
    assert first.receive("Ev1", BODY) is not None
    first.close()  # ...the process dies before answering: no heartbeat any more
    assert second.receive("Ev1", BODY) is None  # its lease still runs: a retry now is a duplicate
    assert second.due() == []
    time.sleep(0.7)
    assert second.due() == ["Ev1"]
    claim = second.claim("Ev1")
    assert claim is not None and claim.attempt == 2  # attempt 2: check the thread before posting
    assert second.claim("Ev1") is None and second.receive("Ev1", BODY) is None
    assert second.status("Ev1") == ("pending", 3)


def test_the_heartbeat_keeps_a_long_answer_s_lease(processes):
    holder = processes(lease_s=0.6)
    other = processes(lease_s=0.6)
    holder.receive("Ev1", BODY)
    time.sleep(1.5)  # two and a half leases: only renewals keep it
    assert other.due() == [] and other.receive("Ev1", BODY) is None
    holder.finish("Ev1")
    assert holder.held() == 0 and other.status("Ev1")[0] == "done"


def test_a_lease_taken_over_is_forgotten_by_the_process_that_lost_it(processes):
    frozen = processes(lease_s=0.3)
    other = processes(lease_s=30)
    frozen.receive("Ev1", BODY)
    frozen._stop.set()  # frozen past its lease (no heartbeat)...
    time.sleep(0.4)
    assert other.claim("Ev1") is not None  # ...and taken over
    assert frozen.renew() == 0 and frozen.held() == 0 and other.get("Ev1").owner == other.boot_id


def test_a_released_event_is_due_again_after_a_backoff_and_a_failed_one_never(processes):
    log = processes(lease_s=30)
    log.receive("Ev1", BODY)
    assert log.release("Ev1") == 1.0 and log.held() == 0
    assert log.due() == [] and log.receive("Ev1", BODY) is None  # within the backoff
    time.sleep(1.05)
    assert log.due() == ["Ev1"] and log.claim("Ev1").attempt == 2
    assert log.release("Ev1") == 2.0  # the backoff doubles
    log.receive("Ev2", {**BODY, "event_id": "Ev2"})
    log.fail("Ev2", "channel_not_found")
    assert log.get("Ev2").status == "failed" and log.get("Ev2").outcome == "channel_not_found"
    assert log.receive("Ev2", BODY) is None


def test_an_oversized_body_is_recorded_bounded_with_what_answering_reads(processes):
    log = processes()
    event = {"type": "app_mention", "text": "q" * 100_000, "channel": "C1", "ts": "1.2", "user": "U1",
             "blocks": [{"type": "rich_text", "elements": ["x" * 100_000]}]}
    log.receive("Ev1", {**BODY, "event": event})
    record = log.get("Ev1")
    assert len(record.body.encode()) <= MAX_BODY_BYTES
    kept = log.body("Ev1")["event"]
    assert (kept["channel"], kept["ts"], kept["user"], "blocks" in kept) == ("C1", "1.2", "U1", False)


def test_records_older_than_a_day_are_forgotten_and_a_stale_pending_one_given_up(processes):
    log = processes()
    log.receive("EvOld", BODY)
    log.receive("EvDone", BODY)
    log.finish("EvDone")
    with log.engine.begin() as connection:
        connection.execute(update(deliveries).values(first_seen=time.time() - 2 * KEEP_SECONDS))
    log.close()
    again = processes()
    assert again.get("EvDone") is None
    assert (again.get("EvOld").status, again.get("EvOld").outcome) == ("failed", "expired")


def test_a_conversation_gives_earlier_questions_as_history(state_engine):
    log = ConversationLog(state_engine)  # on SQLite and on PostgreSQL (conftest.state_url)
    assert not log.knows_thread("C1", "100.1")
    a = log.start("C1", "100.1", "100.1", "U1", "first?")
    log.complete(a, "answer one [1]", False, [{"n": 1, "chunk_id": "x"}])
    log.set_reply(a, "100.2")
    b = log.start("C1", "100.1", "100.3", "U2", "second?")
    c = log.start("C1", "100.1", "100.4", "U1", "third?")
    log.start("C2", "100.1", "100.5", "U1", "other channel")
    assert log.knows_thread("C1", "100.1") and not log.knows_thread("C1", "999.9")
    assert log.history("C1", "100.1", before_id=c) == ["first?", "second?"]
    assert log.history("C1", "100.1", before_id=b) == ["first?"]
    turn = log.get(a)
    assert (turn.answer, turn.citations, turn.reply_ts) == ("answer one [1]", [{"n": 1, "chunk_id": "x"}], "100.2")


def test_feedback_keeps_one_vote_per_user_and_answer(state_engine):
    log = FeedbackLog(state_engine)
    args = dict(answer_id=1, channel="C1", message_ts="1.1", question="q", citations=[{"n": 1}])
    assert log.record(user_id="U1", vote="up", **args)
    assert not log.record(user_id="U1", vote="up", **args)
    assert log.record(user_id="U1", vote="down", **args)
    assert log.record(user_id="U2", vote="up", **args)
    assert sorted((f.user_id, f.vote) for f in log.all()) == [("U1", "down"), ("U2", "up")]
    with pytest.raises(ValueError):
        log.record(user_id="U3", vote="meh", **args)


# ---------------------------------------------------------------- request parsing (the Bolt "payload" bug)


def test_a_slash_command_mentioning_payload_keeps_its_fields():
    form = slash_payload("/strategy-check", "payload licensing")
    request = FormSafeBoltRequest(body=form, headers={"content-type": "application/x-www-form-urlencoded"})
    assert request.body["command"] == "/strategy-check" and request.body["text"] == "payload licensing"
    assert request.context.team_id == request.body["team_id"]
    copy = request.to_copyable()  # what Bolt hands to lazy listeners
    assert type(copy) is FormSafeBoltRequest and copy.body == request.body and copy.raw_body == form


def test_bolt_itself_still_loses_such_a_command():
    """Documents why the guard exists; when Bolt fixes its parser this test tells us the guard can go."""
    form = slash_payload("/strategy-check", "payload licensing")
    assert BoltRequest(body=form, headers={"content-type": "application/x-www-form-urlencoded"}).body == {}


def test_interactive_payloads_and_events_parse_as_before():
    click = block_action_payload("answer_feedback_up", '{"answer_id": 1, "vote": "up"}')
    assert parse_slack_body(click, "application/x-www-form-urlencoded")["type"] == "block_actions"
    assert parse_slack_body('{"type": "event_callback"}', "application/json") == {"type": "event_callback"}
    assert parse_slack_body(urlencode({"text": "a=b&payload"}), None) == {"text": "a=b&payload"}
    assert parse_slack_body("", None) == {}


@pytest.mark.parametrize("raw, content_type", [
    ("{oops", "application/json"), ("[1]", "application/json"), ("payload=%7Bnot-json", None),
    ("payload=%5B1%5D", "application/x-www-form-urlencoded"),
])
def test_unreadable_bodies_are_refused_with_a_reason(raw, content_type):
    with pytest.raises(MalformedBody):
        parse_slack_body(raw, content_type)


def test_health_is_ok_only_once_the_index_is_loaded():
    from types import SimpleNamespace

    from bot.services import IndexReadiness
    from bot.wsgi import health

    services = SimpleNamespace(readiness=IndexReadiness(), kb=SimpleNamespace(is_loaded=False))
    assert health(services) == ("503 Service Unavailable", {"status": "loading"})
    services.readiness.error = "IndexMissing: no index"
    assert health(services) == ("503 Service Unavailable", {"status": "error", "error": "IndexMissing: no index"})
    services.readiness.loaded.set()
    assert health(services)[0] == "200 OK"


def test_health_recovers_when_a_later_question_loads_the_index():
    """The start-up load failed (say the index was being rebuilt); a question loaded it since."""
    from types import SimpleNamespace

    from bot.services import IndexReadiness
    from bot.wsgi import health

    services = SimpleNamespace(readiness=IndexReadiness(error="IndexBusy: a re-index is running"),
                               kb=SimpleNamespace(is_loaded=False))
    assert health(services)[0] == "503 Service Unavailable"
    services.kb.is_loaded = True
    assert health(services) == ("200 OK", {"status": "ok"})
