"""Answers to questions: @mentions in channels, direct messages, and follow-ups in the bot's threads.

Bolt acknowledges each event before these run (on the services' executor), so the
work here — retrieval, posting — happens after Slack has its 200. A follow-up is a
plain message in a thread where the bot was already asked something: no new mention
needed, and the thread's earlier questions steer retrieval.

Answers going into a thread are streamed (bot/streaming.py) unless SLACK_STREAMING is off;
a stream Slack refuses falls back to posting, one that breaks is filled in with chat.update.

Each answer ends its delivery (bot/state/deliveries.py) exactly one way: `done` once
posted (or found already posted by an earlier attempt); back to `pending` for the
resumer when Slack failed transiently (5xx, 429, no connection: the client has retried
already); `failed` on a permanent Slack error (the channel is gone, the bot is not in it,
the token is revoked...). Only an unforeseen error gets "Sorry…".
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.answer import Message, answer_message, answer_sections, draft_message, simple_message
from bot.blocks.text import escape, is_top_level_strategy_check, plain_question, slack_texts
from bot.middleware import ATTEMPT_KEY, EVENT_ID_KEY
from bot.replying import Reply, error_code, is_transient
from bot.services import Services
from bot.streaming import AnswerStream, StreamBroken, StreamRefused
from knowledge.language import language_of
from retrieval.answer import Answer
from retrieval.index_store import IndexError_
from retrieval.service import QuestionError

log = logging.getLogger(__name__)

QUESTION_SUBTYPES = (None, "thread_broadcast")  # a person's message; not a file share, join, edit...
CHANNEL_TYPES = ("channel", "group", "mpim")
HISTORY_TURNS = 3
STREAM_UPDATE_S = 1.0  # while an LLM writes, the placeholder shows its text at most this often (chat.update limits)


def register(app: App, services: Services) -> None:
    @app.event("app_mention", matchers=[lambda event: not _is_dm(event)])
    def on_mention(event: dict, context: BoltContext, client: WebClient) -> None:
        # A mention is answered in its thread (the message starts one if it is top-level).
        thread = event.get("thread_ts") or event["ts"]
        answer(services, client, context, event, thread_key=thread, reply_thread=thread)

    @app.event("message", matchers=[_is_dm_question])
    def on_direct_message(event: dict, context: BoltContext, client: WebClient) -> None:
        # In a DM a top-level question gets a top-level answer and stands alone; in a DM thread, the thread is context.
        thread = event.get("thread_ts")
        answer(services, client, context, event, thread_key=thread or event["ts"], reply_thread=thread)

    def is_follow_up(event: dict, context: BoltContext) -> bool:
        return _is_thread_message(event, context) and services.conversations.knows_thread(
            event["channel"], event["thread_ts"])

    @app.event("message", matchers=[is_follow_up])
    def on_follow_up(event: dict, context: BoltContext, client: WebClient) -> None:
        thread = event["thread_ts"]
        answer(services, client, context, event, thread_key=thread, reply_thread=thread, hint_if_empty=False)


def _is_dm(event: dict) -> bool:
    return event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D")


def _is_dm_question(event: dict, context: BoltContext) -> bool:
    """A person's direct message, but not a top-level "Run a strategy check" (bot/listeners/assistant.py
    starts the dialogue for that one)."""
    return event.get("channel_type") == "im" and event.get("subtype") in QUESTION_SUBTYPES and "user" in event \
        and not is_top_level_strategy_check(event, context.bot_user_id)


def _is_thread_message(event: dict, context: BoltContext) -> bool:
    """A person's reply in a channel thread that does not mention the bot (the mention event covers those)."""
    thread_ts = event.get("thread_ts")
    mention = f"<@{context.bot_user_id}" if context.bot_user_id else None
    return (event.get("channel_type") in CHANNEL_TYPES and event.get("subtype") in QUESTION_SUBTYPES
            and "user" in event and bool(thread_ts) and thread_ts != event.get("ts")
            and not (mention and mention in (event.get("text") or "")))


# Permanent errors that mean the bot cannot post in the channel at all: no "Sorry…" is attempted.
UNREACHABLE = frozenset({"channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed",
                         "account_inactive", "token_revoked", "token_expired", "no_permission", "missing_scope",
                         "restricted_action", "team_access_not_granted", "ekm_access_denied"})


def answer(services: Services, client: WebClient, context: BoltContext, event: dict, *,
           thread_key: str, reply_thread: str | None, hint_if_empty: bool = True) -> None:
    """Answer one question, record it, and end its delivery (see the module docstring)."""
    texts = slack_texts()
    event_id = context.get(EVENT_ID_KEY)
    question = plain_question(event.get("text") or "", context.bot_user_id)
    reply = Reply(client, event["channel"], event["ts"], reply_thread, reaction=texts["reaction_working"],
                  event_id=event_id)
    outcome, reply_ts = "answered", None
    try:
        if int(context.get(ATTEMPT_KEY) or 1) > 1:  # resumed or retried: it may be in Slack already
            posted = reply.find_posted()
            if posted and posted[1]:
                outcome, reply_ts = "already_posted", posted[0]
                return
            if posted:
                reply.resume_from(posted[0])
            elif event_id and (streamed := services.deliveries.noted_reply(event_id)):
                reply.resume_from(streamed, streamed=True)  # a stream that never stopped: no metadata yet
            elif event_id and (orphan := _orphan_stream(services, reply, context)):
                reply.resume_from(orphan, streamed=True)  # a stream started whose ts was never noted
        if not question:  # "@bot" alone gets a hint; an empty follow-up (a sticker, say) nothing
            if hint_if_empty:
                reply_ts = reply.send(simple_message(texts["empty_question"]))
            return
        recipient = (event.get("team") or context.team_id, event.get("user"))
        reply_ts = _answer_question(services, reply, event, question, thread_key, recipient)
    except Exception as exc:
        outcome = _failed(reply, event, exc)
    finally:
        reply.done()  # the 👀 comes off, whatever happened
        if event_id:
            _end_delivery(services, event_id, outcome, reply_ts)


def _orphan_stream(services: Services, reply: Reply, context: BoltContext) -> str | None:
    """The message an earlier attempt's stream start left without a noted ts (it died before noting it, or
    Slack created the message and answered 5xx), noted now; None when no start was marked or no single
    message fits. Two that fit are left alone: filling in someone else's message is worse than a duplicate."""
    deliveries = services.deliveries
    marked_at = deliveries.stream_mark(reply.event_id) if reply.event_id else None
    if marked_at is None or not reply.event_id:
        return None
    found = [ts for ts in reply.orphan_streams(bot_user_id=context.bot_user_id, bot_id=context.bot_id,
                                               marked_at=marked_at)
             if not deliveries.replied_elsewhere(ts, reply.event_id)]
    if len(found) != 1:
        if found:
            log.warning("%s: %d messages may be the stream an earlier attempt started; adopting none",
                        reply.event_id, len(found))
        return None
    log.info("%s: adopting the stream %s an earlier attempt started but never noted", reply.event_id, found[0])
    deliveries.note_reply(reply.event_id, found[0])
    return found[0]


def _failed(reply: Reply, event: dict, exc: Exception) -> str:
    """What to record of a failed answer: `retry` (transient), a Slack error code (permanent) or `error`."""
    where = f"{event.get('ts')} in {event.get('channel')}"
    if is_transient(exc):
        log.warning("answering %s: Slack failed transiently (%s); it will be retried", where, error_code(exc))
        return "retry"
    if isinstance(exc, SlackApiError):
        code = error_code(exc)
        log.warning("answering %s failed for good: Slack said %s", where, code)
        if code not in UNREACHABLE:
            _tell_failure(reply, slack_texts()["failed"])
        return code
    log.exception("answering %s failed", where)
    _tell_failure(reply, slack_texts()["failed"])
    return "error"


def _end_delivery(services: Services, event_id: str, outcome: str, reply_ts: str | None) -> None:
    deliveries = services.deliveries
    if outcome == "retry":
        delay = deliveries.release(event_id)
        if delay is None:
            log.warning("gave up on %s after repeated transient Slack failures", event_id)
    elif outcome in {"answered", "already_posted", "error"}:
        deliveries.finish(event_id, outcome, reply_ts)
    else:
        deliveries.fail(event_id, outcome)


def _answer_question(services: Services, reply: Reply, event: dict, question: str, thread_key: str,
                     recipient: tuple[str | None, str | None]) -> str:
    """Answer and post (or stream); returns the ts of the message carrying the answer."""
    texts = slack_texts()
    language = language_of(question)
    reply.working(_by_language(texts["assistant_status"], language),
                  _by_language(texts["loading_messages"], language))
    conversations = services.conversations
    answer_id = conversations.start(event["channel"], thread_key, event["ts"], event.get("user", ""), question)
    history = conversations.history(event["channel"], thread_key, answer_id, HISTORY_TURNS)
    transcript = [(t.question, t.answer) for t in conversations.turns(  # what an LLM answer reads of the thread
        event["channel"], thread_key, answer_id, services.settings.llm_history_turns) if t.answer and not t.abstained]
    stream = _start_stream(services, reply, recipient, language)
    if stream is None and services.settings.llm_provider != "none":  # a slow writer: show where it will appear
        reply.placeholder(simple_message(_by_language(texts["placeholder"], language)))
    started = time.perf_counter()
    try:
        result, stream = _ask(services, reply, stream, question, history, transcript)
    except QuestionError as exc:
        _stop_streaming(reply, stream)
        return reply.send(simple_message(texts["question_refused"].format(reason=escape(str(exc)))))
    except IndexError_ as exc:  # no index, a damaged one...: the reason and the fix, not "Sorry…"
        log.warning("cannot answer %s: %s", event.get("ts"), exc)
        _stop_streaming(reply, stream)
        ts = reply.send(simple_message(texts["index_unavailable"].format(reason=escape(str(exc)))))
        reply.done()
        return ts
    except BaseException:  # whatever else: a message the stream started is where "Sorry…" goes
        _stop_streaming(reply, stream)
        raise
    listed = result.closest if result.abstained else result.citations
    # Recorded before posting: a feedback click can arrive before chat.postMessage returns.
    conversations.complete(answer_id, result.answer, result.abstained, [_citation_record(c) for c in listed])
    reply_ts = _deliver(reply, stream, result, answer_message(result, answer_id))
    conversations.set_reply(answer_id, reply_ts)
    log.info("answer %s posted in %s %.0f ms after the work began (retrieval %.0f ms)%s", answer_id,
             event["channel"], (time.perf_counter() - started) * 1000, result.timings_ms.get("total", 0.0),
             " [declined]" if result.abstained else "")
    return reply_ts


def _start_stream(services: Services, reply: Reply, recipient: tuple[str | None, str | None],
                  language: str) -> AnswerStream | None:
    """A stream for this answer, started; None where answers are posted instead (streaming off, a
    top-level DM answer, an answer resumed from an earlier attempt's message, or Slack refused)."""
    if not (services.settings.slack_streaming and reply.thread_ts) or reply.placeholder_ts:
        return None
    texts = _by_language(slack_texts()["streaming"], language)
    stream = AnswerStream(reply, recipient_team_id=recipient[0], recipient_user_id=recipient[1], texts=texts,
                          buffer_chars=slack_texts()["limits"]["stream_buffer_chars"],
                          on_starting=lambda: _mark_stream(services, reply),
                          on_started=lambda ts: _note_stream(services, reply, ts))
    try:
        stream.start(_document_count(services))
    except StreamRefused:
        return None
    except StreamBroken as exc:
        reply.resume_from(exc.ts, streamed=True)
        return None
    return stream


def _mark_stream(services: Services, reply: Reply) -> None:
    if reply.event_id:
        services.deliveries.mark_stream(reply.event_id)


def _note_stream(services: Services, reply: Reply, ts: str) -> None:
    if reply.event_id:
        services.deliveries.note_reply(reply.event_id, ts)


def _document_count(services: Services) -> int:
    try:
        return services.kb.status().documents
    except Exception:  # no index yet: the answer says why; the step shows no number
        return 0


def _stop_streaming(reply: Reply, stream: AnswerStream | None) -> None:
    """Whatever is sent next replaces the stream's message instead of posting another one."""
    if stream is not None and stream.ts:
        reply.resume_from(stream.ts, streamed=True)


def _ask(services: Services, reply: Reply, stream: AnswerStream | None, question: str, history: list[str],
         transcript: list) -> tuple[Answer, AnswerStream | None]:
    """The answer, and the stream still open; while an LLM writes, the stream (or else the placeholder,
    at most every STREAM_UPDATE_S) shows its text so far (drafts are checked too)."""
    if services.settings.llm_provider == "none" and stream is None:
        return services.kb.ask(question, history=history, transcript=transcript), None
    shown_at = time.monotonic()
    for draft in services.kb.stream_answer(question, history=history, transcript=transcript):
        if draft.answer is not None:
            return draft.answer, stream
        if stream is not None:
            try:
                stream.write(draft.text)
            except StreamBroken as exc:  # the rest goes through the placeholder path: chat.update
                reply.resume_from(exc.ts, streamed=True)
                stream = None
        elif time.monotonic() - shown_at >= STREAM_UPDATE_S:
            reply.progress(draft_message(draft.text))
            shown_at = time.monotonic()
    raise RuntimeError("the answer stream ended without an answer")


def _deliver(reply: Reply, stream: AnswerStream | None, result: Answer, message: Message) -> str:
    """Stop the stream with the sources and feedback under the text, or post (or fill in) the message;
    returns the ts of the message carrying the answer."""
    if stream is None:
        return reply.send(message)
    body = len(answer_sections(result.answer, slack_texts()["limits"]))  # the streamed text stands for these
    try:
        exact = stream.finish(result.answer, message.blocks[body:], reply.metadata)
    except StreamBroken as exc:
        reply.resume_from(exc.ts, streamed=True)
        return reply.send(message)
    assert stream.ts is not None
    reply.sent()
    if exact:
        return stream.ts
    reply.resume_from(stream.ts)  # the checked answer differs from what was streamed: it replaces it
    return reply.send(message)


def _citation_record(citation) -> dict:
    """What we keep of a citation for feedback: where it points, not the whole passage."""
    data = asdict(citation)
    data.pop("text", None)
    return data


def _by_language(table: dict, language: str) -> str:
    return table.get(language, table["en"])


def _tell_failure(reply: Reply, text: str) -> None:
    try:
        reply.send(Message(text=text, blocks=simple_message(text).blocks))
    except Exception:  # Slack itself is failing: the log has the first error already
        log.warning("could not tell the user about the failure either")
