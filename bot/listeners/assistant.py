"""The agent view: the bot's split-view DM (Slack's AI-app surface), through Bolt's `Assistant` middleware.

Bolt decides which events belong to an assistant thread (`assistant_thread_started`,
`assistant_thread_context_changed`, a person's message in a DM thread), so this module
does not guess. What people get:

- opening the view: suggested prompts in their Slack language (users.info `locale`;
  English otherwise): starter questions and "Run a strategy check" (prompts/slack.yaml);
- a question: the thread's title becomes the question (assistant.threads.setTitle, first
  question only), then the usual answer (bot/listeners/answers.py: status with loading
  messages, streamed text, sources and feedback);
- "Run a strategy check" (or the same words typed, "运行策略检查" too): the /strategy-check dialogue
  starts right in this thread, through the command's own code (bot/listeners/strategy_check.py):
  the same first question with its buttons, the same stored dialogue. The thread is titled with
  the request like a question's (no status: one post, nothing to wait for). Once per event: the
  delivery log drops a duplicate delivery, and the first question carries the event's answer
  metadata (bot/replying.py), so a retried or resumed attempt reads the thread back, finds it and
  starts no second dialogue (saving its ts if the earlier attempt stopped before it could). Where
  the dialogue cannot be posted (Slack refuses it for good) the reply is the hint on typing
  /strategy-check instead; a transient failure gives the event back to the resumer.

The context the user is looking at (`assistant_thread_context_changed`) is not kept:
answers do not use it, and Bolt's default store would write it into the metadata of the
bot's first message in the thread, which is where an answer's delivery metadata lives
(bot/replying.py). Every event here ends its delivery like any other.
"""
from __future__ import annotations

import logging

from slack_bolt import App, BoltContext
from slack_bolt.middleware.assistant import Assistant
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.text import is_strategy_check_request, is_top_level_strategy_check, plain_question, slack_texts
from bot.listeners.answers import QUESTION_SUBTYPES, answer
from bot.middleware import ATTEMPT_KEY, EVENT_ID_KEY
from bot.replying import Reply, cosmetic_client, error_code, is_transient
from bot.services import Services

log = logging.getLogger(__name__)

TITLE_CHARS = 80  # a thread title longer than this is cut (Slack shows about one line)


def register(app: App, services: Services) -> None:
    assistant = Assistant(logger=log)

    @assistant.thread_started
    def on_thread_started(event: dict, context: BoltContext, client: WebClient) -> None:
        thread = event["assistant_thread"]
        texts = slack_texts()["assistant"]
        language = user_language(client, thread.get("user_id"))
        prompts = texts["prompts"].get(language, texts["prompts"]["en"])
        try:
            cosmetic_client(client).assistant_threads_setSuggestedPrompts(
                channel_id=thread["channel_id"], thread_ts=thread["thread_ts"], prompts=prompts[:4],
                title=texts["prompts_title"].get(language, texts["prompts_title"]["en"]))
        except (SlackApiError, OSError) as exc:  # the view still works; people type their question
            log.info("assistant.threads.setSuggestedPrompts failed (%s)", _code(exc))
        _finish(services, context, "prompts_set")

    @assistant.thread_context_changed
    def on_context_changed(context: BoltContext) -> None:
        _finish(services, context, "ignored")

    @assistant.user_message(matchers=[is_question])
    def on_question(event: dict, context: BoltContext, client: WebClient) -> None:
        thread = event["thread_ts"]
        question = plain_question(event.get("text") or "", context.bot_user_id)
        if is_strategy_check_request(question):
            start_strategy_check(services, client, context, event, question)
            return
        if question and not services.conversations.knows_thread(event["channel"], thread):
            _set_title(client, event["channel"], thread, question)
        answer(services, client, context, event, thread_key=thread, reply_thread=thread)

    app.assistant(assistant)

    @app.event("message", matchers=[is_dm_strategy_check_request])
    def on_dm_strategy_check(event: dict, context: BoltContext, client: WebClient) -> None:
        # a top-level DM outside the agent view: the dialogue runs in the thread the request starts
        question = plain_question(event.get("text") or "", context.bot_user_id)
        start_strategy_check(services, client, context, {**event, "thread_ts": event["ts"]}, question,
                             agent_view=False)


def is_dm_strategy_check_request(event: dict, context: BoltContext) -> bool:
    """A top-level direct message asking to run the strategy check (answers.py leaves these alone)."""
    return event.get("channel_type") == "im" and is_question(event) \
        and is_top_level_strategy_check(event, context.bot_user_id)


def is_question(event: dict) -> bool:
    """A person's message (not a file shared into the thread: bot/listeners/uploads.py takes those)."""
    return event.get("subtype") in QUESTION_SUBTYPES and "user" in event and not event.get("files")


def user_language(client: WebClient, user_id: str | None) -> str:
    """"zh" for a person whose Slack language is Chinese, else "en" (also when users.info fails)."""
    if not user_id:
        return "en"
    try:
        user = cosmetic_client(client).users_info(user=user_id, include_locale=True).get("user") or {}
    except (SlackApiError, OSError) as exc:
        log.info("users.info failed (%s); suggesting English prompts", _code(exc))
        return "en"
    return "zh" if str(user.get("locale") or "").lower().startswith("zh") else "en"


def _set_title(client: WebClient, channel: str, thread_ts: str, question: str) -> None:
    title = " ".join(question.split())
    title = title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"
    try:
        cosmetic_client(client).assistant_threads_setTitle(channel_id=channel, thread_ts=thread_ts, title=title)
    except (SlackApiError, OSError) as exc:
        log.info("assistant.threads.setTitle failed (%s)", _code(exc))


def start_strategy_check(services: Services, client: WebClient, context: BoltContext, event: dict,
                         request: str, *, agent_view: bool = True) -> None:
    """Start the /strategy-check dialogue in the event's thread, once per event (see the module docstring),
    and end the event's delivery; `agent_view`: the thread is an assistant thread, which gets a title."""
    feature = services.strategy_check
    channel, thread = event["channel"], event["thread_ts"]
    if feature is None:  # the feature is not registered in this app
        _strategy_check_hint(client, event, services, context)
        return
    reply = Reply(client, channel, event["ts"], thread, event_id=context.get(EVENT_ID_KEY))
    try:
        if int(context.get(ATTEMPT_KEY) or 1) > 1 and (posted := reply.find_posted()):
            if feature.adopt_first_question(channel, thread, posted[0]):
                log.info("strategy check %s/%s: saved the first question an earlier attempt posted", channel, thread)
            _finish(services, context, "already_posted", posted[0])
            return
        if agent_view and not services.conversations.knows_thread(channel, thread):
            _set_title(client, channel, thread, request)
        dialogue = feature.start_in_thread(client, channel, thread, event["user"],
                                           metadata=reply.metadata(complete=True).get("metadata"))
    except Exception as exc:  # every failure ends the delivery one way or another
        _strategy_check_failed(services, client, context, event, exc)
        return
    log.info("strategy check %s/%s started from %s", channel, thread, "the agent view" if agent_view else "a DM")
    _finish(services, context, "strategy_check", next(iter(dialogue.message_ts.values()), None))


def _strategy_check_failed(services: Services, client: WebClient, context: BoltContext, event: dict,
                           exc: Exception) -> None:
    """Transient: back to the resumer (its retry finds a question already posted). Otherwise the hint on
    typing /strategy-check, so the person still has a way to run it."""
    where = f"{event.get('channel')}/{event.get('thread_ts')}"
    if is_transient(exc) and context.get(EVENT_ID_KEY):
        log.warning("strategy check %s: Slack failed transiently (%s); it will be retried", where, error_code(exc))
        services.deliveries.release(context[EVENT_ID_KEY])
        return
    if isinstance(exc, SlackApiError):
        log.warning("strategy check %s could not start (%s); posting the hint instead", where, error_code(exc))
    else:
        log.exception("strategy check %s could not start; posting the hint instead", where)
    _strategy_check_hint(client, event, services, context)


def _strategy_check_hint(client: WebClient, event: dict, services: Services, context: BoltContext) -> None:
    """Where no dialogue can start here: say how to run the slash command (it runs in a thread of its own)."""
    try:
        response = client.chat_postMessage(channel=event["channel"], thread_ts=event["thread_ts"],
                                           text=slack_texts()["assistant"]["strategy_check_hint"])
        _finish(services, context, "hint", str(response.get("ts")))
    except SlackApiError as exc:
        log.warning("could not post the strategy check hint: %s", _code(exc))
        _finish(services, context, "error")


def _finish(services: Services, context: BoltContext, outcome: str, reply_ts: str | None = None) -> None:
    if context.get(EVENT_ID_KEY):
        services.deliveries.finish(context[EVENT_ID_KEY], outcome, reply_ts)


def _code(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error"))
    return type(exc).__name__
