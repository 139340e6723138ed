"""/strategy-check over the wire: the real bot in HTTP mode, signed requests, a fake Slack Web API.

Everything a user does is a signed POST to the bot (the slash command, each button click or
select); everything the bot does is a recorded call on the fake Web API. The knowledge base is
the session's (already loaded); the dialogue state lives in SQLite under the test's DATA_DIR,
so leaving `running_bot` and entering it again over the same DATA_DIR is a bot restart.
Every acknowledgement's latency is recorded and checked against Slack's 3-second limit.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from sqlalchemy import text

from bot.blocks import decision as ui
from bot.blocks.text import slack_texts
from decision import DEFAULT_MODEL_PATH, DecisionModelError, load_decision_model
from decision.dialogue_store import Dialogue
from replicas import wait_until
from slack_harness import (
    CHANNEL_ID,
    DM_CHANNEL_ID,
    USER_ID,
    FakeSlackAPI,
    block_action_payload,
    bot_settings,
    event_payload,
    message_event,
    new_ts,
    running_bot,
    slash_payload,
)
from strategy_bot import migrate
from strategy_bot.database import open_engine
from test_decision_engine import ALL_CLOSED

OTHER_USER = "U0OTHER02"
ACK_LIMIT_MS = 3000.0
DAY = 86400.0
ACK_MS: list[float] = []


@pytest.fixture(scope="module")
def model():
    return load_decision_model()


@pytest.fixture(scope="module", autouse=True)
def report_ack_latency(request):
    """Print the acknowledgement latencies measured in this module (they go into the report)."""
    yield
    if ACK_MS:
        line = (f"/strategy-check acks: {len(ACK_MS)} requests, max {max(ACK_MS):.1f} ms, "
                f"median {sorted(ACK_MS)[len(ACK_MS) // 2]:.1f} ms (limit {ACK_LIMIT_MS:.0f} ms)")
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():  # past pytest's capture, even without -s
                reporter.write_line(f"\n{line}")


@pytest.fixture
def slack():
    with FakeSlackAPI() as api:
        yield api


# --------------------------------------------------------------------------- a user in Slack


@dataclass
class Message:
    ts: str
    text: str
    blocks: list[dict[str, Any]]

    def elements(self) -> list[dict[str, Any]]:
        return [e for b in self.blocks if b.get("type") == "actions" for e in b["elements"]]

    def element(self, action_id: str) -> dict[str, Any]:
        return next(e for e in self.elements() if e["action_id"] == action_id)

    @property
    def all_text(self) -> str:
        parts = [self.text]
        for block in self.blocks:
            if isinstance(block.get("text"), dict):
                parts.append(block["text"]["text"])
            for element in block.get("elements", []):
                if isinstance(element, dict) and element.get("type") == "mrkdwn":
                    parts.append(element["text"])
        return "\n".join(parts)


@dataclass
class StrategyThread:
    """One /strategy-check dialogue, driven the way a person in Slack would drive it."""

    slack: FakeSlackAPI
    bot: Any
    user: str
    channel: str
    ts: str = ""
    acks: list[float] = field(default_factory=list)

    # what the bot has posted in this thread
    def posts(self) -> list[Message]:
        calls = self.slack.calls("chat.postMessage")
        return [Message(self.slack.ts_of(c), c.body.get("text", ""), c.body.get("blocks") or [])
                for c in calls if c.body.get("thread_ts") == self.ts and c.body.get("channel") == self.channel]

    def latest(self) -> Message:
        return self.posts()[-1]

    def updates(self, ts: str) -> list[Message]:
        return [Message(ts, c.body.get("text", ""), c.body.get("blocks") or [])
                for c in self.slack.calls("chat.update") if c.body.get("ts") == ts]

    # Generous timeouts: a result embeds three queries, which can take seconds on a loaded machine.
    def wait_posts(self, count: int, timeout: float = 60.0) -> Message:
        self.slack.wait_for("chat.postMessage", count, timeout=timeout,
                            where=lambda c: (c.body.get("thread_ts"), c.body.get("channel")) == (self.ts, self.channel))
        return self.posts()[count - 1]

    def wait_update(self, ts: str, count: int = 1, timeout: float = 60.0) -> Message:
        self.slack.wait_for("chat.update", count, timeout=timeout, where=lambda c: c.body.get("ts") == ts)
        return self.updates(ts)[count - 1]

    # what the person does
    def start(self, text: str = "") -> "StrategyThread":
        before = len(self.slack.calls("chat.postMessage"))
        response = self.bot.send_form(slash_payload("/strategy-check", text, user_id=self.user,
                                                    channel_id=self.channel, response_url=self.slack.response_url()))
        self._acked(response)
        posted = self.slack.wait_for("chat.postMessage", before + 1, timeout=60.0)
        top = next(c for c in posted[before:] if c.body.get("text", "").startswith(f"<@{self.user}> started"))
        self.ts = self.slack.ts_of(top)
        self.wait_posts(1)
        return self

    def click(self, message: Message, action_id: str, *, user: str | None = None, value: str | None = None,
              option_value: str | None = None) -> None:
        """Click a button (by action id), or pick `option_value` in the message's select."""
        element = message.element(action_id)
        kwargs: dict[str, Any] = {}
        if element["type"] == "static_select":
            option = next(o for o in element["options"] if json.loads(o["value"])["v"] == option_value)
            kwargs = dict(action_type="static_select", selected_option=option)
            value = ""
        payload = block_action_payload(action_id, value if value is not None else element.get("value", ""),
                                       user=user or self.user, channel=self.channel, message_ts=message.ts,
                                       thread_ts=self.ts, message_blocks=message.blocks, **kwargs)
        self._acked(self.bot.send_form(payload))

    def answer(self, message: Message, option_value: str, *, user: str | None = None) -> None:
        for element in message.elements():
            if element["action_id"].startswith("strategy_check:answer:"):
                if element["type"] == "static_select":
                    return self.click(message, element["action_id"], user=user, option_value=option_value)
                if json.loads(element["value"])["v"] == option_value:
                    return self.click(message, element["action_id"], user=user)
        raise AssertionError(f"no choice {option_value!r} in {message.all_text[:200]}")

    def answer_and_wait(self, option_value: str) -> Message:
        """Answer the latest question; wait for its in-place update and the next message."""
        current, count = self.latest(), len(self.posts())
        self.answer(current, option_value)
        self.wait_update(current.ts)
        return self.wait_posts(count + 1)

    def _acked(self, response) -> None:
        assert response.status == 200, response.body
        self.acks.append(response.elapsed_ms)
        ACK_MS.append(response.elapsed_ms)
        assert response.elapsed_ms < ACK_LIMIT_MS


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


def question_number(message: Message) -> int:
    found = re.search(r"Question (\d+)/(\d+)", message.all_text)
    assert found, message.all_text[:300]
    return int(found.group(1))


# --------------------------------------------------------------------------- the whole dialogue


def test_a_strategy_check_runs_to_a_cited_recommendation_across_a_bot_restart(slack, data_dir, kb, model):
    settings = bot_settings(data_dir, slack)
    keys = model.question_keys
    with running_bot(settings, kb=kb) as bot:
        thread = StrategyThread(slack, bot, USER_ID, CHANNEL_ID).start("hospital triage assistant")
        top = next(c for c in slack.calls("chat.postMessage") if slack.ts_of(c) == thread.ts)
        assert "thread_ts" not in top.body, "the anchor message is top-level"
        assert top.body["text"].startswith(f"<@{USER_ID}> started a strategy check")
        first = thread.latest()
        assert question_number(first) == 1 and "Question 1/9" in first.all_text
        assert {e["action_id"] for e in first.elements()} >= {"strategy_check:restart", "strategy_check:cancel"}
        assert "strategy_check:back" not in {e["action_id"] for e in first.elements()}

        # Someone else clicks: an ephemeral note for them, nothing moves.
        thread.answer(first, "public", user=OTHER_USER)
        note = slack.wait_for("chat.postEphemeral")[0]
        assert note.body["user"] == OTHER_USER and f"Only <@{USER_ID}> can answer" in note.body["text"]
        slack.settle()
        assert len(thread.posts()) == 1 and thread.updates(first.ts) == []

        second = thread.answer_and_wait(ALL_CLOSED[keys[0]])
        answered = thread.updates(first.ts)[-1]
        assert "→ *Regulated (medical, financial)*" in answered.all_text and answered.elements() == []
        assert question_number(second) == 2
        third = thread.answer_and_wait(ALL_CLOSED[keys[1]])
        assert question_number(third) == 3
        acks_before_restart = len(thread.acks)

    # A new bot process-equivalent over the same DATA_DIR: the dialogue carries on.
    with running_bot(settings, kb=kb) as bot:
        thread.bot = bot
        fourth = thread.answer_and_wait(ALL_CLOSED[keys[2]])
        assert question_number(fourth) == 4
        assert bot.services.dialogues.get(CHANNEL_ID, thread.ts).answers == {k: ALL_CLOSED[k] for k in keys[:3]}

        # Back: the current question closes, the previous one is asked again with its answer shown.
        thread.click(fourth, "strategy_check:back")
        went_back = thread.wait_update(fourth.ts)
        assert "Went back" in went_back.all_text and went_back.elements() == []
        again = thread.wait_posts(5)
        assert question_number(again) == 3
        assert "Current answer: *We can fund the whole lifecycle ourselves*" in again.all_text
        fourth = thread.answer_and_wait(ALL_CLOSED[keys[2]])
        assert question_number(fourth) == 4

        for key in keys[3:-1]:
            thread.answer_and_wait(ALL_CLOSED[key])
        last = thread.latest()
        assert question_number(last) == 9
        assert last.elements()[0]["type"] == "static_select", "nine domains: a select, not nine buttons"
        result = thread.answer_and_wait(ALL_CLOSED[keys[-1]])

        # The result: the recommendation line first, scores, three cited reasons, sources, flip, steps.
        assert result.text.splitlines()[0] == "Recommendation: Closed source"
        assert result.blocks[0] == {"type": "header", "text": {"type": "plain_text",
                                                               "text": "Recommendation: Closed source"}}
        shown = result.all_text
        assert "*Scores*" in shown and "Closed source: " in shown and "(recommended)" in shown
        why = next(b["text"]["text"] for b in result.blocks
                   if b.get("type") == "section" and b["text"]["text"].startswith("*Why*"))
        reasons = [line for line in why.splitlines()[1:] if line.strip()]
        assert len(reasons) == 3 and all(re.search(r"\[\d\]$", line) for line in reasons)
        sources = next(b["text"]["text"] for b in result.blocks
                       if b.get("type") == "section" and b["text"]["text"].startswith("*Sources*"))
        for n in {re.search(r"\[(\d)\]$", line).group(1) for line in reasons}:
            assert f"[{n}] 开源还是闭源" in sources
        assert "*What would change the answer*" in shown and "*Next steps*" in shown
        assert "Context: hospital triage assistant" in shown

        # Back from the result: it stays (without buttons) and the last question is asked again.
        count = len(thread.posts())
        thread.click(result, "strategy_check:back")
        kept = thread.wait_update(result.ts)
        assert kept.blocks[0]["text"]["text"] == "Recommendation: Closed source" and kept.elements() == []
        reasked = thread.wait_posts(count + 1)
        assert question_number(reasked) == 9 and reasked.ts != last.ts
        assert "Current answer: *Financial monitoring (e.g. sentiment)*" in reasked.all_text
        result = thread.answer_and_wait(ALL_CLOSED[keys[-1]])
        assert result.text.splitlines()[0] == "Recommendation: Closed source"

        # Export as Markdown: the whole result as a code block in the thread.
        count = len(thread.posts())
        thread.click(result, "strategy_check:export")
        exported = thread.wait_posts(count + 1)
        body = exported.text.split("```", 2)[1].strip("\n")
        assert body.splitlines()[0] == "Recommendation: Closed source"
        assert "## Sources" in body and "## Why" in body

        # Start over from the result: the result stays (without buttons), question 1 comes again.
        thread.click(result, "strategy_check:restart")
        kept = thread.wait_update(result.ts)
        assert kept.blocks[0]["text"]["text"] == "Recommendation: Closed source" and kept.elements() == []
        restarted = thread.wait_posts(count + 2)
        assert question_number(restarted) == 1 and "Current answer" not in restarted.all_text
        assert bot.services.dialogues.get(CHANNEL_ID, thread.ts).answers == {}

        # Cancel, then Start over from the cancelled message.
        thread.click(restarted, "strategy_check:cancel")
        cancelled = thread.wait_update(restarted.ts)
        assert "cancelled" in cancelled.all_text
        # Saved only after Slack took the update (a failed update saves nothing): wait for the save itself.
        wait_until(lambda: bot.services.dialogues.get(CHANNEL_ID, thread.ts).status == "cancelled", 30,
                   what="the cancelled dialogue saved")
        thread.click(cancelled, "strategy_check:restart")
        assert question_number(thread.wait_posts(count + 3)) == 1

    assert acks_before_restart >= 4 and max(thread.acks) < ACK_LIMIT_MS


def test_markup_in_the_context_never_reaches_slack_raw_not_even_in_the_fallback_or_the_export(
        slack, data_dir, kb, model):
    hostile = "<!channel> <@U0BOSS001> <https://evil.example|click here> triage"
    with running_bot(bot_settings(data_dir, slack), kb=kb) as bot:
        thread = StrategyThread(slack, bot, USER_ID, CHANNEL_ID).start(hostile)
        for key in model.question_keys:
            result = thread.answer_and_wait(ALL_CLOSED[key])
        count = len(thread.posts())
        thread.click(result, "strategy_check:export")
        exported = thread.wait_posts(count + 1)
    for shown in (result.text, json.dumps(result.blocks), exported.text):
        assert "<!channel>" not in shown and "<@U0BOSS001>" not in shown and "<https://" not in shown, shown[:400]
    assert "&lt;!channel&gt;" in result.text and "&lt;!channel&gt;" in exported.text


def test_an_expired_dialogue_says_so_when_clicked(slack, data_dir, kb):
    with running_bot(bot_settings(data_dir, slack), kb=kb) as bot:
        thread = StrategyThread(slack, bot, USER_ID, CHANNEL_ID).start()
        second = thread.answer_and_wait("public")
        store = bot.services.dialogues
        store.save(store.get(CHANNEL_ID, thread.ts), now=time.time() - 8 * DAY)  # idle for 8 days

        thread.answer(second, "partial")
        expired = thread.wait_update(second.ts)
        assert "expired after 7 days without activity" in expired.all_text and "/strategy-check" in expired.all_text
        assert expired.elements() == []
        slack.settle()
        assert len(thread.posts()) == 2, "no further question after an expired click"
        assert store.get(CHANNEL_ID, thread.ts) is None

        thread.answer(second, "partial")  # clicked again (e.g. an old client): a clear note
        note = slack.wait_for("chat.postEphemeral")[0]
        assert "no longer exists" in note.body["text"]


def test_a_double_click_moves_the_dialogue_once(slack, data_dir, kb):
    with running_bot(bot_settings(data_dir, slack), kb=kb) as bot:
        thread = StrategyThread(slack, bot, USER_ID, CHANNEL_ID).start()
        first = thread.latest()
        clicks = [threading.Thread(target=thread.answer, args=(first, "internal")) for _ in range(2)]
        for t in clicks:
            t.start()
        for t in clicks:
            t.join()
        thread.wait_posts(2)
        thread.wait_update(first.ts)  # after the advance is saved: question 2 is posted before that
        slack.settle()
        assert len(thread.posts()) == 2
        assert bot.services.dialogues.get(CHANNEL_ID, thread.ts).step == 1
        stale = slack.wait_for("chat.postEphemeral")[0]
        assert "no longer open" in stale.body["text"]


def replica_settings(engine: str, slack, tmp_path: Path, request) -> list:
    """Settings of two replicas sharing one state database: one SQLite file, or PostgreSQL."""
    if engine == "postgresql":
        url = request.getfixturevalue("postgres_url")
        upgraded = open_engine(url)
        migrate.upgrade(upgraded)
        upgraded.dispose()
        return [bot_settings(tmp_path / name, slack, database_url=url) for name in ("a", "b")]
    return [bot_settings(tmp_path / "data", slack)] * 2


@contextmanager
def writes_held(url) -> Iterator[None]:
    """Hold the state database's dialogue writes (SQLite: the file's write lock; PostgreSQL: the rows'
    locks) until the block ends; reads go on. A thread of its own, as the lock must stay with one connection."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        engine = open_engine(url)
        try:
            with engine.connect().execution_options(sqlite_immediate=True) as connection, connection.begin():
                if engine.dialect.name == "postgresql":
                    connection.execute(text("SELECT 1 FROM dialogues FOR UPDATE"))
                taken.set()
                done.wait(60)
        finally:
            engine.dispose()

    holder = threading.Thread(target=hold, name="writes-held")
    holder.start()
    try:
        assert taken.wait(20), "could not lock the state database"
        yield
    finally:
        done.set()
        holder.join(20)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_click_reaching_another_replica_before_the_question_is_saved_waits_for_it(
        slack, tmp_path, kb, engine, request, caplog):
    """Replica A posted question 1 and has not saved its ts yet (its write is held) when the click on
    it reaches replica B: B must wait for A's save, not answer "no longer open" and lose the click."""
    replicas = replica_settings(engine, slack, tmp_path, request)
    with running_bot(replicas[0], kb=kb) as bot_a, running_bot(replicas[1], kb=kb) as bot_b:
        held = writes_held(bot_a.services.database.url)

        def posted_then_held(call):  # question 1 is posted; A's save of its ts will wait for the lock
            held.__enter__()
            return slack.default_answer(call)

        slack.script("chat.postMessage", slack.default_answer)  # the anchor message
        slack.script("chat.postMessage", posted_then_held)
        try:
            thread = StrategyThread(slack, bot_a, USER_ID, CHANNEL_ID).start()
            first = thread.latest()
            with caplog.at_level(logging.INFO, logger="bot.listeners.strategy_check"):
                StrategyThread(slack, bot_b, USER_ID, CHANNEL_ID, ts=thread.ts).answer(first, "internal")
                deadline = time.monotonic() + 30  # until B has read the unsaved state, one way or the other
                while time.monotonic() < deadline and not slack.calls("chat.postEphemeral") and \
                        "waits for the replica that posted it" not in caplog.text:
                    time.sleep(0.02)
            assert slack.calls("chat.postEphemeral") == [], slack.calls("chat.postEphemeral")[0].body["text"]
        finally:
            held.__exit__(None, None, None)
        second = thread.wait_posts(2)
        assert question_number(second) == 2
        thread.wait_update(first.ts)  # B updates the clicked question after saving the advance
        dialogue = bot_b.services.dialogues.get(CHANNEL_ID, thread.ts)
        assert dialogue.step == 1 and dialogue.answers == {"data_sensitivity": "internal"}
        slack.settle()
        assert slack.calls("chat.postEphemeral") == [] and slack.calls("chat.delete") == []


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_same_click_on_two_replicas_at_once_advances_the_dialogue_once(slack, tmp_path, kb, engine, request):
    """Two bots sharing one state database (one SQLite file, or PostgreSQL) each get the click (a
    retry landing on the other replica); both post the next question before either saves."""
    replicas = replica_settings(engine, slack, tmp_path, request)
    with running_bot(replicas[0], kb=kb) as bot_a, running_bot(replicas[1], kb=kb) as bot_b:
        assert bot_b.get("/healthz").json()["database"] == "ok"
        thread = StrategyThread(slack, bot_a, USER_ID, CHANNEL_ID).start()
        first = thread.latest()
        both_posted = threading.Barrier(2, timeout=20)

        def held(call):  # each replica's next question waits until the other one's is posted too
            both_posted.wait()
            return slack.default_answer(call)

        slack.script("chat.postMessage", held, times=2)
        clicks = [threading.Thread(target=StrategyThread(slack, bot, USER_ID, CHANNEL_ID, ts=thread.ts).answer,
                                   args=(first, "internal")) for bot in (bot_a, bot_b)]
        for t in clicks:
            t.start()
        for t in clicks:
            t.join(timeout=60)
        thread.wait_posts(3)
        slack.wait_for("chat.delete")
        note = slack.wait_for("chat.postEphemeral")[0]
        thread.wait_update(first.ts, 2)  # the winner's, after its save, and the loser's, showing the answer
        slack.settle()

        dialogue = bot_b.services.dialogues.get(CHANNEL_ID, thread.ts)
        assert dialogue.step == 1 and dialogue.answers == {"data_sensitivity": "internal"}
        assert dialogue.version == 3, "created, first question saved, one advance"
        posted = [m.ts for m in thread.posts()[1:]]
        deleted = [c.body["ts"] for c in slack.calls("chat.delete")]
        assert len(deleted) == 1 and deleted[0] in posted, "the losing replica took its question back"
        live = next(ts for ts in posted if ts not in deleted)
        assert dialogue.message_ts["competitive_moat"] == live
        assert "moved this strategy check first" in note.body["text"] and note.body["user"] == USER_ID
        shown = thread.updates(first.ts)
        assert shown and all(m.elements() == [] and "Internal" in m.all_text for m in shown)

        # The dialogue goes on from the one live question, on either replica.
        second = next(m for m in thread.posts() if m.ts == live)
        assert question_number(second) == 2
        StrategyThread(slack, bot_b, USER_ID, CHANNEL_ID, ts=thread.ts).answer(second, "not_moat")
        assert question_number(thread.wait_posts(4)) == 3


def test_several_dialogues_run_at_once_in_different_threads(slack, data_dir, kb, model):
    with running_bot(bot_settings(data_dir, slack), kb=kb) as bot:
        alice = StrategyThread(slack, bot, USER_ID, CHANNEL_ID).start("team A")
        bob = StrategyThread(slack, bot, OTHER_USER, "C0CHAN002").start("team B")
        carol = StrategyThread(slack, bot, "U0CAROL03", CHANNEL_ID).start("team C")
        plans = [(alice, ["public", "not_moat"]), (bob, ["regulated", "core_moat"]), (carol, ["internal", "partial"])]

        def run(thread: StrategyThread, values: list[str]) -> None:
            for value in values:
                thread.answer_and_wait(value)

        workers = [threading.Thread(target=run, args=item) for item in plans]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        for thread, values in plans:
            dialogue = bot.services.dialogues.get(thread.channel, thread.ts)
            assert dialogue.user_id == thread.user
            assert dialogue.answers == dict(zip(model.question_keys, values))
            assert question_number(thread.latest()) == 3


def dialogues_in(bot, channel: str) -> int:
    """Dialogues stored for a channel, whatever their thread (read from the state database itself)."""
    with bot.services.database.connect() as db:
        return db.execute(text("SELECT count(*) FROM dialogues WHERE channel_id = :c"), {"c": channel}).scalar()


def test_the_command_says_so_when_the_bot_cannot_post_in_the_channel(slack, data_dir, kb):
    slack.script("chat.postMessage", {"ok": False, "error": "not_in_channel"})
    with running_bot(bot_settings(data_dir, slack), kb=kb) as bot:
        response = bot.send_form(slash_payload("/strategy-check", channel_id="C0PRIVATE",
                                               response_url=slack.response_url("cmd")))
        assert response.status == 200 and response.elapsed_ms < ACK_LIMIT_MS
        ACK_MS.append(response.elapsed_ms)
        reply = slack.wait_for("response_url")[0]
        assert "not_in_channel" in reply.body["text"] and reply.body["response_type"] == "ephemeral"
        slack.settle()
        assert len(slack.calls("chat.postMessage")) == 1  # the refused anchor; no question was posted
        assert dialogues_in(bot, "C0PRIVATE") == 0  # nothing half-started is kept


def test_a_malformed_decision_model_stops_the_bot_at_start_up_naming_the_entry(slack, data_dir, kb, tmp_path):
    data = yaml.safe_load(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))
    data["questions"][4]["options"][1]["weights"]["open"] = "lots"
    bad = tmp_path / "decision_model.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DecisionModelError) as error:
        with running_bot(bot_settings(data_dir, slack, decision_model_file=bad), kb=kb):
            pass
    assert "question 'ecosystem_value' option 'useful': weight 'open' must be a number, got 'lots'" in str(error.value)


# --------------------------------------------------------------------------- the decision record as a canvas


def finished_thread(slack, bot, model) -> tuple[StrategyThread, Message]:
    thread = StrategyThread(slack, bot, USER_ID, CHANNEL_ID).start("hospital triage assistant")
    for key in model.question_keys:
        result = thread.answer_and_wait(ALL_CLOSED[key])
    return thread, result


def test_save_as_canvas_creates_one_canvas_with_the_whole_record_however_often_it_is_clicked(
        slack, data_dir, kb, model):
    with running_bot(bot_settings(data_dir, slack), kb=kb) as bot:
        thread, result = finished_thread(slack, bot, model)
        assert any(b["type"] == "table" for b in result.blocks)  # Slack accepted it: the fake validates tables
        count = len(thread.posts())
        thread.click(result, "strategy_check:canvas")
        thread.click(result, "strategy_check:canvas")  # a double click
        thread.click(result, "strategy_check:canvas", user=OTHER_USER)  # someone else, a moment later
        saved = thread.wait_posts(count + 1)
        slack.wait_for("chat.postEphemeral", 2)
        slack.settle()
        canvases = slack.canvases()
        assert len(canvases) == 1 and len(thread.posts()) == count + 1
        [canvas] = canvases
        assert canvas["method"] == "conversations.canvases.create" and canvas["channel_id"] == CHANNEL_ID
        assert canvas["title"] == "Recommendation: Closed source"
        markdown = canvas["markdown"]
        for heading in ("## Scores", "## Why", "## What would change the answer", "## Next steps",
                        "## Your answers", "## Sources"):
            assert heading in markdown
        assert "_(suggestions, not from the documents)_" in markdown
        assert re.search(r"^\d\. .*\[\d\]$", markdown, re.M), "cited reasons keep their [n]"
        assert canvas["canvas_id"] in saved.text and "https://fake.slack.com/docs/" in saved.text
        notes = [c.body["text"] for c in slack.calls("chat.postEphemeral")]
        assert all("nothing new was created" in note for note in notes), notes

        # The channel has its channel canvas now: a second strategy check's record is a canvas tabbed in it.
        other, result = finished_thread(slack, bot, model)
        count = len(other.posts())
        other.click(result, "strategy_check:canvas")
        other.wait_posts(count + 1)
        assert [c["method"] for c in slack.canvases()] == ["conversations.canvases.create", "canvases.create"]
        assert slack.canvases()[1]["channel_id"] == CHANNEL_ID


def test_a_workspace_without_canvases_gets_the_plain_markdown_export_and_can_try_again(slack, data_dir, kb, model):
    slack.refuse_canvases("free_team_canvas_not_allowed")
    with running_bot(bot_settings(data_dir, slack), kb=kb) as bot:
        thread, result = finished_thread(slack, bot, model)
        count = len(thread.posts())
        thread.click(result, "strategy_check:canvas")
        exported = thread.wait_posts(count + 1)
        assert "free_team_canvas_not_allowed" in exported.text
        body = exported.text.split("```", 2)[1].strip("\n")
        assert body.splitlines()[0] == "Recommendation: Closed source" and "## Why" in body
        assert slack.canvases() == []
        slack.refuse_canvases(None)  # canvases switched on: the same button now makes one
        thread.click(result, "strategy_check:canvas")
        thread.wait_posts(count + 2)
        assert len(slack.canvases()) == 1


# --------------------------------------------------------------------------- from the agent view


def request_in_agent_view(bot, text: str, root: str, **send: Any) -> tuple[str, str]:
    """A person's message in an agent-view thread (the suggested prompt, or typed); (payload, event id)."""
    payload = event_payload(message_event(text, channel=DM_CHANNEL_ID, channel_type="im", thread_ts=root))
    response = bot.send_event(payload, **send)
    assert response.status == 200 and response.elapsed_ms < ACK_LIMIT_MS
    return payload, json.loads(payload)["event_id"]


def agent_thread(slack, bot, root: str) -> StrategyThread:
    return StrategyThread(slack, bot, USER_ID, DM_CHANNEL_ID, ts=root)


@pytest.mark.parametrize("request_text", ["Run a strategy check", "运行策略检查"])
def test_a_strategy_check_request_in_the_agent_view_starts_the_dialogue_in_its_thread(
        slack, data_dir, kb, model, request_text):
    root = new_ts()
    with running_bot(bot_settings(data_dir, slack), kb=kb) as bot:
        _, event_id = request_in_agent_view(bot, request_text, root)
        thread = agent_thread(slack, bot, root)
        first = thread.wait_posts(1)
        # the command's own first question, buttons and all, in the agent view's thread
        expected = ui.question_message(model, Dialogue(DM_CHANNEL_ID, root, USER_ID), model.questions[0])
        assert (first.text, first.blocks) == expected and "Question 1/9" in first.all_text
        assert {e["action_id"] for e in first.elements()} >= {"strategy_check:restart", "strategy_check:cancel"}
        # finished once the question is saved (the post is seen a moment before)
        wait_until(lambda: bot.services.deliveries.status(event_id) == ("done", 1), 30, what="the delivery finished")
        assert bot.services.deliveries.get(event_id).reply_ts == first.ts
        stored = bot.services.dialogues.get(DM_CHANNEL_ID, root)
        assert (stored.user_id, stored.step) == (USER_ID, 0)
        assert dict(stored.message_ts) == {model.questions[0].key: first.ts}
        title = slack.wait_for("assistant.threads.setTitle")[0].body
        assert (title["channel_id"], title["thread_ts"], title["title"]) == (DM_CHANNEL_ID, root, request_text)

        # clicking an answer moves it on exactly as in a /strategy-check thread
        second = thread.answer_and_wait(ALL_CLOSED[model.questions[0].key])
        assert question_number(second) == 2
        assert "→ *Regulated (medical, financial)*" in thread.updates(first.ts)[-1].all_text
        assert bot.services.dialogues.get(DM_CHANNEL_ID, root).answers == {
            model.questions[0].key: ALL_CLOSED[model.questions[0].key]}
        hint = slack_texts()["assistant"]["strategy_check_hint"]
        assert all(p.text != hint for p in thread.posts()) and slack.calls("chat.startStream") == []


def test_the_same_request_delivered_twice_starts_one_dialogue(slack, data_dir, kb, model):
    root = new_ts()
    with running_bot(bot_settings(data_dir, slack), kb=kb) as bot:
        payload, event_id = request_in_agent_view(bot, "Run a strategy check", root)
        thread = agent_thread(slack, bot, root)
        first = thread.wait_posts(1)
        for retry in (1, 2):  # Slack's retries of the same event
            response = bot.send_event(payload, retry_num=retry)
            assert response.status == 200 and response.elapsed_ms < ACK_LIMIT_MS
        slack.settle(quiet=0.5)
        assert [p.ts for p in thread.posts()] == [first.ts]
        assert bot.services.dialogues.get(DM_CHANNEL_ID, root).version == 2  # created, its question saved: no more
        assert bot.services.deliveries.status(event_id) == ("done", 3)


def test_a_retry_after_slack_posted_the_question_but_failed_adopts_it_instead_of_starting_again(
        slack, data_dir, kb, model):
    """Slack posts the first question and answers 500: the event goes back to be retried (by Slack's retry or
    the resumer, whichever comes first); the retry finds the question by its metadata and saves it."""
    root = new_ts()
    slack.fail_after("chat.postMessage", status=500, error="internal_error")
    with running_bot(bot_settings(data_dir, slack), kb=kb) as bot:
        payload, event_id = request_in_agent_view(bot, "Run a strategy check", root)
        thread = agent_thread(slack, bot, root)
        thread.wait_posts(1)
        assert bot.send_event(payload, retry_num=1).status == 200
        wait_until(lambda: (bot.services.deliveries.status(event_id) or ("",))[0] == "done", 30,
                   what="the retried delivery finished")
        slack.settle(quiet=0.5)
        [kept] = [m for m in slack.messages(DM_CHANNEL_ID) if m.get("thread_ts") == root]  # as Slack has it
        assert len(thread.posts()) == 1, "one question posted, none after the retry"
        delivery = bot.services.deliveries.get(event_id)
        assert (delivery.outcome, delivery.reply_ts) == ("already_posted", kept["ts"])
        assert dict(bot.services.dialogues.get(DM_CHANNEL_ID, root).message_ts) == {model.questions[0].key: kept["ts"]}
        first = Message(kept["ts"], kept["text"], kept["blocks"])
        count = len(thread.posts())
        thread.answer(first, ALL_CLOSED[model.questions[0].key])
        assert question_number(thread.wait_posts(count + 1)) == 2


def test_where_the_dialogue_cannot_be_posted_the_agent_view_gets_the_hint(slack, data_dir, kb):
    root = new_ts()
    slack.script("chat.postMessage", {"ok": False, "error": "invalid_blocks"})  # refused for good, once
    with running_bot(bot_settings(data_dir, slack), kb=kb) as bot:
        _, event_id = request_in_agent_view(bot, "Run a strategy check", root)
        posts = slack.wait_for("chat.postMessage", 2)
        assert posts[1].body["thread_ts"] == root
        assert posts[1].body["text"] == slack_texts()["assistant"]["strategy_check_hint"]
        wait_until(lambda: (bot.services.deliveries.status(event_id) or ("",))[0] == "done", 30,
                   what="the delivery finished")
        assert bot.services.deliveries.get(event_id).outcome == "hint"
        assert dialogues_in(bot, DM_CHANNEL_ID) == 0  # nothing half-started is kept


def test_a_top_level_direct_message_asking_for_the_check_starts_it_in_that_messages_thread(
        slack, data_dir, kb, model):
    """Outside the agent view, "Run a strategy check" in a DM was answered as a question (and declined)."""
    root = new_ts()
    with running_bot(bot_settings(data_dir, slack), kb=kb) as bot:
        payload = event_payload(message_event("Run a strategy check", channel=DM_CHANNEL_ID, channel_type="im",
                                              ts=root))
        assert bot.send_event(payload).status == 200
        thread = agent_thread(slack, bot, root)
        first = thread.wait_posts(1)
        expected = ui.question_message(model, Dialogue(DM_CHANNEL_ID, root, USER_ID), model.questions[0])
        assert (first.text, first.blocks) == expected
        assert bot.send_event(payload, retry_num=1).status == 200  # Slack's retry: still one dialogue
        event_id = json.loads(payload)["event_id"]
        wait_until(lambda: bot.services.deliveries.status(event_id) == ("done", 2), 30, what="the delivery finished")
        slack.settle(quiet=0.5)
        assert [p.ts for p in thread.posts()] == [first.ts]
        top_level = [m for m in slack.messages(DM_CHANNEL_ID) if not m.get("thread_ts")]
        assert top_level == [] and slack.calls("assistant.threads.setTitle") == []  # no answer, no agent title
        assert bot.services.dialogues.get(DM_CHANNEL_ID, root).user_id == USER_ID
