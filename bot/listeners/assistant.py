"""The agent view: the bot's split-view DM (Slack's AI-app surface), through Bolt's `Assistant` middleware.

Bolt decides which events belong to an assistant thread (`assistant_thread_started`,
`assistant_thread_context_changed`, a person's message in a DM thread), so this module
does not guess. What people get:

- opening the view: suggested prompts in their Slack language (users.info `locale`;
  English otherwise): starter questions and "Run a strategy check" (prompts/slack.yaml);
- a question: the thread's title becomes the question (assistant.threads.setTitle, first
  question only), then the usual answer (bot/listeners/answers.py: status with loading
  messages, streamed text, sources and feedback);
- "Run a strategy check": how to start /strategy-check (it runs in a thread of its own).

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

from bot.blocks.text import plain_question, slack_texts
from bot.listeners.answers import QUESTION_SUBTYPES, answer
from bot.middleware import EVENT_ID_KEY
from bot.replying import cosmetic_client
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
            _strategy_check_hint(client, event, services, context)
            return
        if question and not services.conversations.knows_thread(event["channel"], thread):
            _set_title(client, event["channel"], thread, question)
        answer(services, client, context, event, thread_key=thread, reply_thread=thread)

    app.assistant(assistant)


def is_question(event: dict) -> bool:
    """A person's message (not a file shared into the thread: bot/listeners/uploads.py takes those)."""
    return event.get("subtype") in QUESTION_SUBTYPES and "user" in event and not event.get("files")


def is_strategy_check_request(question: str) -> bool:
    wanted = slack_texts()["assistant"]["strategy_check_requests"]
    return question.strip().rstrip(".!。！").strip().lower() in {w.lower() for w in wanted}


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


def _strategy_check_hint(client: WebClient, event: dict, services: Services, context: BoltContext) -> None:
    """The guided decision is a slash command with a thread of its own: say how to start it."""
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
