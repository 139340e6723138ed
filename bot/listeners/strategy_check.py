"""/strategy-check: the guided open-vs-closed decision as a dialogue in a Slack thread.

A thin adapter over the core: `decision` holds the questions, the scoring, the per-thread state
(SQLite via DialogueStore) and the cited report; this module turns slash commands and clicks
into dialogue transitions and Web API calls. Every click is acknowledged first (Bolt runs the
rest on the executor). A click is resolved only from its payload and SQLite — the channel and
message ts from the container, the thread ts from the element's value — so a restarted bot
carries on where the old one stopped.

Rules of a click, checked in this order: the dialogue must exist; an idle one expires (the
clicked message says so); only its starter may move it (others get an ephemeral note); only the
live message (the current question, or the result) moves it, so a double click or an old
message cannot skip a question. State is saved only after the next message is posted, so a
failed Web API call changes nothing and the same click can simply be repeated.

Two replicas (or two processes) can handle clicks on one dialogue at once; the in-process lock
cannot see that, the store's versions can: the save of the click that comes second fails
(`DialogueConflict`), that click takes back the message it posted, tells the clicker, and shows
the clicked message as the dialogue now stands. So it is acknowledged and changes nothing.

"Save as canvas" creates the result's canvas once: the click claims it by saving a CANVAS_KEY entry
in the dialogue (its version check lets one click win across replicas; a double click finds the
claim and is told so), then the canvas id replaces the claim. A claim older than CANVAS_CLAIM_S
(the process died mid-way) may be taken again. When the workspace refuses canvases, the claim is
dropped and the plain Markdown export is posted instead.

A message is posted before its ts is saved, so a click can reach another replica in between: it
names a message newer than any the dialogue knows. That click waits for the save (polling the
store, at most SAVE_WAIT_S) instead of calling the question "no longer open"; in one process the
thread lock already makes it wait.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks import decision as ui
from bot.blocks.text import escape
from bot.decision_canvas import CanvasRefused, canvas_url, create_canvas
from bot.replying import is_transient
from decision import DecisionModel, evaluate, load_decision_model
from decision.dialogue_store import ACTIVE, FINISHED, Dialogue, DialogueConflict, DialogueStore
from decision.report import build_report
from strategy_bot.migrate import open_state

log = logging.getLogger(__name__)

COMMAND = "/strategy-check"
# How long a click on a message not saved yet waits for the replica that posted it: a save is one
# UPDATE right after Slack answers, so seconds mean that replica died in between (the click is then stale).
SAVE_WAIT_S = 10.0
SAVE_POLL_S = 0.05
CANVAS_KEY = "__canvas__"  # Dialogue.message_ts key: "pending:<epoch>" while being created, then the canvas id
CANVAS_CLAIM_S = 120.0  # a canvas call takes seconds; a claim this old belongs to a process that died


@dataclass(frozen=True)
class Click:
    """The parts of a block_actions payload a dialogue transition needs."""

    channel: str
    thread_ts: str
    message_ts: str
    user: str
    value: ui.ActionValue
    blocks: tuple[dict[str, Any], ...]  # the clicked message as Slack shows it
    text: str = ""
    team: tuple[str, str] = ("", "")  # (team id, team domain) the click came from: a canvas link

    @classmethod
    def from_payload(cls, body: dict[str, Any], action: dict[str, Any]) -> "Click | None":
        """None when the payload lacks what we wrote into it (not one of our messages)."""
        raw = (action.get("selected_option") or {}).get("value") if action.get("type") == "static_select" \
            else action.get("value")
        value = ui.ActionValue.decode(raw)
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
        message_ts = container.get("message_ts") or message.get("ts")
        user = (body.get("user") or {}).get("id")
        if value is None or not (channel and message_ts and user):
            return None
        thread_ts = value.thread_ts or container.get("thread_ts") or message.get("thread_ts")
        team = body.get("team") or {}
        return cls(channel, thread_ts, message_ts, user, value, tuple(message.get("blocks") or ()),
                   str(message.get("text") or ""), (str(team.get("id") or ""), str(team.get("domain") or "")))


class ThreadLocks:
    """One lock per dialogue thread: Bolt runs listeners concurrently, and two quick clicks on the
    same dialogue must not both read the same state. (In-process only; the state itself is in
    SQLite. A lock is a few bytes per thread ever seen, so the dict is not pruned.)"""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}

    @contextmanager
    def hold(self, channel: str, thread_ts: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault((channel, thread_ts), threading.Lock())
        with lock:
            yield


class StrategyCheck:
    """The feature's per-process parts and its transitions (one method per kind of click)."""

    def __init__(self, model: DecisionModel, store: DialogueStore, kb: Any, ttl_days: int) -> None:
        self.model, self.store, self.kb, self.ttl_days = model, store, kb, ttl_days
        self.locks = ThreadLocks()

    # ------------------------------------------------------------------ the command

    def start(self, client: WebClient, channel: str, user: str, context: str) -> Dialogue:
        """Post the anchor message, create the dialogue in its thread, ask the first question."""
        limit = int(ui.texts()["max_context_chars"])
        context = " ".join(context.split())[:limit]
        text, blocks = ui.started_message(user, context)
        top = client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        return self.start_in_thread(client, top.get("channel") or channel, top["ts"], user, context)

    def start_in_thread(self, client: WebClient, channel: str, thread_ts: str, user: str, context: str = "",
                        metadata: dict[str, Any] | None = None) -> Dialogue:
        """Create the dialogue in an existing thread (the command's anchor, or an agent-view thread, where
        it replaces any earlier one) and ask the first question there. `metadata` goes on that question's
        message: an event's retry finds it by reading the thread back (bot/listeners/assistant.py)."""
        with self.locks.hold(channel, thread_ts):  # a click on question 1 waits until it is saved
            dialogue = self.store.create(channel, thread_ts, user, context=context)
            try:
                return self._ask(client, dialogue, metadata)
            except SlackApiError as exc:
                if not is_transient(exc):  # refused for good: nothing half-started is kept (after a transient
                    self.store.delete(channel, thread_ts)  # failure Slack may have posted it: a retry adopts it)
                raise

    def adopt_first_question(self, channel: str, thread_ts: str, message_ts: str) -> bool:
        """Record `message_ts` as the first question of the thread's dialogue when an earlier attempt posted
        it and stopped before saving it (its buttons would otherwise be stale); True when recorded."""
        with self.locks.hold(channel, thread_ts):
            dialogue = self.store.get(channel, thread_ts)
            if dialogue is None or dialogue.status != ACTIVE or dialogue.step != 0 or dialogue.message_ts:
                return False
            try:
                self.store.save(dialogue.with_message(self.model.questions[0].key, message_ts))
            except DialogueConflict:  # moved meanwhile (another replica): it knows its messages
                return False
            return True

    # ------------------------------------------------------------------ clicks

    def on_click(self, client: WebClient, click: Click, kind: str) -> None:
        with self.locks.hold(click.channel, click.thread_ts):
            dialogue = self._resolve(client, click, require_owner=kind not in {"export", "canvas"})
            if dialogue is None:
                return
            try:
                getattr(self, f"_{kind}")(client, click, dialogue)
            except DialogueConflict:
                self._lost_race(client, click, kind)

    def _lost_race(self, client: WebClient, click: Click, kind: str) -> None:
        """Another replica saved a click on this dialogue first: this one changes nothing."""
        log.info("strategy check %s/%s: a %s click lost to a concurrent one and changed nothing",
                 click.channel, click.thread_ts, kind)
        self._ephemeral(client, click, ui.texts()["moved_meanwhile"])
        current = self.store.get(click.channel, click.thread_ts)
        key = click.value.question
        if current is None or key not in self.model.question_keys:
            return  # gone, or the result message: the winning click left it as it should be
        question = self.model.question(key)
        if self._live_ts(current) == click.message_ts:
            text, blocks = ui.question_message(self.model, current, question)
        elif key in current.answers:
            text, blocks = ui.answered_message(self.model, question, current.answers[key])
        else:
            return
        client.chat_update(channel=click.channel, ts=click.message_ts, text=text, blocks=blocks)

    def _resolve(self, client: WebClient, click: Click, require_owner: bool) -> Dialogue | None:
        """The dialogue this click may move, or None after telling the clicker why not."""
        dialogue = self.store.get(click.channel, click.thread_ts)
        texts = ui.texts()
        if dialogue is None:
            self._ephemeral(client, click, texts["unknown"])
            return None
        if self.store.is_expired(dialogue, time.time(), self.ttl_days):
            text, blocks = ui.notice_message(texts["expired"].format(days=self.ttl_days))
            client.chat_update(channel=click.channel, ts=click.message_ts, text=text, blocks=blocks)
            self.store.delete(click.channel, click.thread_ts)
            return None
        if require_owner and click.user != dialogue.user_id:
            self._ephemeral(client, click, texts["not_yours"].format(owner=dialogue.user_id))
            return None
        if click.message_ts != self._live_ts(dialogue):
            dialogue = self._await_save(click, dialogue)
            if dialogue is None or click.message_ts != self._live_ts(dialogue):
                self._ephemeral(client, click, texts["stale"])
                return None
        return dialogue

    def _await_save(self, click: Click, dialogue: Dialogue) -> Dialogue | None:
        """The dialogue once it knows the clicked message, when that message is newer than any it knows
        (posted, not saved yet, by another replica); as it is otherwise, or after SAVE_WAIT_S."""
        if not _newer_than_known(click.message_ts, dialogue):
            return dialogue
        log.info("strategy check %s/%s: a click on message %s waits for the replica that posted it to save it",
                 click.channel, click.thread_ts, click.message_ts)
        deadline = time.monotonic() + SAVE_WAIT_S
        current: Dialogue | None = dialogue
        while current is not None and _newer_than_known(click.message_ts, current) and time.monotonic() < deadline:
            time.sleep(SAVE_POLL_S)
            current = self.store.get(click.channel, click.thread_ts)
        return current

    def _live_ts(self, dialogue: Dialogue) -> str | None:
        """The one message whose buttons may move the dialogue now."""
        if dialogue.status == FINISHED:
            return dialogue.message_ts.get(ui.RESULT_KEY)
        if dialogue.step >= len(self.model.questions):
            return None
        return dialogue.message_ts.get(self.model.questions[dialogue.step].key)

    def _answer(self, client: WebClient, click: Click, dialogue: Dialogue) -> None:
        question = dialogue.current_question(self.model)
        if question is None or question.key != click.value.question:
            self._ephemeral(client, click, ui.texts()["stale"])
            return
        moved = dialogue.answer(question.key, click.value.value, self.model)
        moved = self._ask(client, moved)
        text, blocks = ui.answered_message(self.model, question, click.value.value)
        client.chat_update(channel=click.channel, ts=click.message_ts, text=text, blocks=blocks)
        log.info("strategy check %s/%s: %s answered (%d/%d)", click.channel, click.thread_ts, question.key,
                 len(moved.answers), len(self.model.questions))

    def _back(self, client: WebClient, click: Click, dialogue: Dialogue) -> None:
        moved = dialogue.back()
        if moved.step == dialogue.step and dialogue.status == ACTIVE:
            return  # already at the first question (its message has no Back button)
        moved = self._ask(client, replace(moved, message_ts=_without_result(moved.message_ts)))
        if click.value.question == ui.RESULT_KEY:
            text, blocks = _closed(click, dialogue)
        else:
            text, blocks = ui.went_back_message(self.model, self.model.question(click.value.question))
        client.chat_update(channel=click.channel, ts=click.message_ts, text=text, blocks=blocks)

    def _restart(self, client: WebClient, click: Click, dialogue: Dialogue) -> None:
        self._ask(client, dialogue.restart())
        note = ui.texts()["restarted"].format(user=click.user)
        if click.value.question == ui.RESULT_KEY:
            text, blocks = _closed(click, dialogue, note)
        else:
            text, blocks = ui.notice_message(note)
        client.chat_update(channel=click.channel, ts=click.message_ts, text=text, blocks=blocks)

    def _cancel(self, client: WebClient, click: Click, dialogue: Dialogue) -> None:
        text, blocks = ui.cancelled_message(dialogue, click.value.question, click.user)
        client.chat_update(channel=click.channel, ts=click.message_ts, text=text, blocks=blocks)
        self.store.save(dialogue.cancel())

    def _export(self, client: WebClient, click: Click, dialogue: Dialogue) -> None:
        report = self._report(dialogue)
        client.chat_postMessage(channel=click.channel, thread_ts=dialogue.thread_ts, text=ui.export_text(report))

    def _canvas(self, client: WebClient, click: Click, dialogue: Dialogue) -> None:
        """The result as a canvas in the channel, once (see the module docstring); the plain export
        when the workspace refuses canvases."""
        t = ui.texts()
        held = dialogue.message_ts.get(CANVAS_KEY)
        if held and not _abandoned(held):
            pending = held.startswith("pending:")
            url = None if pending else canvas_url(click.team[1], click.team[0], held)
            self._ephemeral(client, click, t["canvas_pending"] if pending else
                            t["canvas_already"].format(link=f" (<{url}|open it>)" if url else ""))
            return
        try:
            claimed = self.store.save(dialogue.with_message(CANVAS_KEY, f"pending:{time.time():.0f}"))
        except DialogueConflict:  # another click (or replica) claimed it a moment ago
            self._ephemeral(client, click, t["canvas_pending"])
            return
        report = self._report(dialogue)
        try:
            canvas = create_canvas(client, click.channel, ui.canvas_title(report), report.to_markdown())
        except CanvasRefused as exc:
            self.store.save(replace(claimed, message_ts=_without(claimed.message_ts, CANVAS_KEY)))
            log.info("strategy check %s/%s: no canvas (%s); posting the Markdown export", click.channel,
                     click.thread_ts, exc.code)
            intro = t["canvas_unavailable"].format(error=escape(exc.code))
            client.chat_postMessage(channel=click.channel, thread_ts=dialogue.thread_ts,
                                    text=f"{intro}\n{ui.export_text(report)}")
            return
        except Exception:  # e.g. a dropped connection: free the claim so a later click can try again
            self.store.save(replace(claimed, message_ts=_without(claimed.message_ts, CANVAS_KEY)))
            raise
        self.store.save(claimed.with_message(CANVAS_KEY, canvas.canvas_id))
        log.info("strategy check %s/%s: saved as canvas %s", click.channel, click.thread_ts, canvas.canvas_id)
        url = canvas_url(click.team[1], click.team[0], canvas.canvas_id)
        client.chat_postMessage(channel=click.channel, thread_ts=dialogue.thread_ts,
                                text=ui.canvas_saved_text(url, click.user))

    # ------------------------------------------------------------------ posting

    def _ask(self, client: WebClient, dialogue: Dialogue, metadata: dict[str, Any] | None = None) -> Dialogue:
        """Post what comes next (a question or the result) in the thread, then save the state."""
        question = dialogue.current_question(self.model)
        if question is None:
            text, blocks = ui.result_message(self._report(dialogue), dialogue)
            key = ui.RESULT_KEY
        else:
            text, blocks = ui.question_message(self.model, dialogue, question)
            key = question.key
        posted = client.chat_postMessage(channel=dialogue.channel_id, thread_ts=dialogue.thread_ts,
                                         text=text, blocks=blocks, **({"metadata": metadata} if metadata else {}))
        try:
            return self.store.save(dialogue.with_message(key, posted["ts"]))
        except DialogueConflict:  # another replica moved the dialogue meanwhile: take this message back
            try:
                client.chat_delete(channel=dialogue.channel_id, ts=posted["ts"])
            except SlackApiError as exc:
                log.warning("could not delete a superseded strategy-check message: %s",
                            exc.response.get("error") if exc.response else exc)
            raise

    def _report(self, dialogue: Dialogue):
        decision = evaluate(self.model, dialogue.answers)
        return build_report(self.model, decision, self.kb, context=dialogue.context)

    @staticmethod
    def _ephemeral(client: WebClient, click: Click, text: str) -> None:
        client.chat_postEphemeral(channel=click.channel, user=click.user, text=text, thread_ts=click.thread_ts)


def _newer_than_known(message_ts: str, dialogue: Dialogue) -> bool:
    """True when a message is later than the thread and every message the dialogue has saved (Slack's ts
    grow within a channel; compared as decimals, as floats would round their microseconds)."""
    try:
        known = [Decimal(ts) for key, ts in (("", dialogue.thread_ts), *dialogue.message_ts.items())
                 if key != CANVAS_KEY]  # the canvas entry is no message ts
        return Decimal(message_ts) > max(known)
    except InvalidOperation:
        return False


def _without_result(message_ts: Any) -> dict[str, str]:
    """Going back from the result: its message and its canvas belong to the result that is gone."""
    return _without(_without(message_ts, ui.RESULT_KEY), CANVAS_KEY)


def _without(message_ts: Any, key: str) -> dict[str, str]:
    return {k: v for k, v in dict(message_ts).items() if k != key}


def _abandoned(held: str) -> bool:
    """A canvas claim whose process never finished it (see CANVAS_CLAIM_S)."""
    if not held.startswith("pending:"):
        return False
    try:
        return time.time() - float(held.split(":", 1)[1]) > CANVAS_CLAIM_S
    except ValueError:
        return True


def _closed(click: Click, dialogue: Dialogue, note: str = "") -> tuple[str, list[dict[str, Any]]]:
    """A result message that is no longer live: the same content without its buttons."""
    blocks = [b for b in click.blocks if b.get("type") != "actions"]
    if note:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return click.text or ui.RESULT_KEY, blocks


# ---------------------------------------------------------------------- wiring


def register(app: App, services: Any) -> None:
    """Load the decision model now, so a malformed file stops the bot at start-up, naming the entry."""
    settings = services.settings
    model = load_decision_model(settings.decision_model_file)
    store = getattr(services, "dialogues", None) or DialogueStore(open_state(settings))
    feature = StrategyCheck(model, store, services.kb, settings.dialogue_ttl_days)
    services.strategy_check = feature  # the agent view starts dialogues through it (bot/listeners/assistant.py)

    @app.command(COMMAND)
    def on_command(ack: Ack, command: dict, client: WebClient, respond: Callable[..., Any]) -> None:
        ack()
        try:
            feature.start(client, command["channel_id"], command["user_id"], command.get("text") or "")
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown error") if exc.response else "unknown error"
            log.warning("strategy check could not start in %s: %s", command.get("channel_id"), error)
            respond(response_type="ephemeral", text=ui.texts()["cannot_post"].format(error=escape(str(error))))

    for kind, action_id in (("answer", re.compile(rf"^{re.escape(ui.ANSWER)}:")), ("back", ui.BACK),
                            ("restart", ui.RESTART), ("cancel", ui.CANCEL), ("export", ui.EXPORT),
                            ("canvas", ui.CANVAS)):
        app.action(action_id)(_click_listener(feature, kind))


def _click_listener(feature: StrategyCheck, kind: str) -> Callable[..., None]:
    def on_click(ack: Ack, body: dict, action: dict, client: WebClient) -> None:
        ack()
        click = Click.from_payload(body, action)
        if click is None:
            log.warning("ignored a %s click without a strategy-check value", kind)
            return
        try:
            feature.on_click(client, click, kind)
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown error") if exc.response else "unknown error"
            log.warning("strategy check %s/%s: %s failed: %s", click.channel, click.thread_ts, kind, error)
            _tell(client, click, ui.texts()["failed"].format(error=escape(str(error))))
        except Exception as exc:  # e.g. the index cannot load: say so, keep the state, log the trace
            log.exception("strategy check %s/%s: %s failed", click.channel, click.thread_ts, kind)
            _tell(client, click, ui.texts()["failed"].format(error=escape(type(exc).__name__)))

    return on_click


def _tell(client: WebClient, click: Click, text: str) -> None:
    try:
        StrategyCheck._ephemeral(client, click, text)
    except SlackApiError:
        log.warning("could not tell %s that a strategy-check click failed", click.user)
