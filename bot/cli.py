"""The `strategy-bot` command line: index, ask, eval, chat (and the Slack server).

Every command goes through the same `KnowledgeBase` the Slack bot uses.

Text that is not UTF-8 (GBK from a Windows file, junk bytes) on the command line or stdin
is read with `surrogateescape`, never crashing the read; the core then refuses such a
question with the bytes it could not decode (`retrieval.service.undecodable`): `ask` exits 2,
`ask --json -` prints an error object for that line and `chat` an error, and both carry on
with the next line.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import click

from bot.cli_base import knowledge_base, load_settings
from strategy_bot.settings import Settings, SettingsError
from strategy_bot.tuning import Tuning, TuningError, load_tuning

log = logging.getLogger("strategy_bot")


class BadInput(click.ClickException):
    """Exit status 2: the user asked for something we refuse, with the reason."""

    exit_code = 2


@click.group()
@click.version_option(package_name="strategy-bot")
def cli() -> None:
    """strategy-bot: cited answers on open- vs closed-source model strategy."""


def _index_errors():
    from retrieval.embeddings import EmbeddingError
    from retrieval.index_store import IndexError_

    return (IndexError_, EmbeddingError)


def _cli_user() -> str:
    """Who ran `strategy-bot index`, for the index's "built by" (`/strategy-reindex status`)."""
    import getpass

    try:
        return f"cli ({getpass.getuser()})"
    except (OSError, KeyError):  # no login name in some containers
        return "cli"


@cli.command()
@click.option("--rebuild", is_flag=True, help="Embed every document again, ignoring the current index.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def index(rebuild: bool, as_json: bool) -> None:
    """Build or refresh the index from KNOWLEDGE_DIR (plus DATA_DIR/knowledge when KNOWLEDGE_DIR is the shipped
    corpus)."""
    from bot.console import print_build_summary, progress_bar

    settings = load_settings(batch=True, writes=True)
    kb = knowledge_base(settings)
    try:
        with progress_bar(disabled=as_json) as progress:
            summary = kb.reindex(rebuild=rebuild, built_by=_cli_user(), progress=progress)
    except _index_errors() as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False))
    else:
        print_build_summary(summary)


@cli.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (with '-': one per line).")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True)
def ask(question: str, as_json: bool, mode: str) -> None:
    """Answer QUESTION from the documents ('-' reads one question per line from stdin)."""
    from retrieval.llm import LLMUnavailable
    from retrieval.service import QuestionError, validate_question

    settings = load_settings()
    if question != "-":
        try:  # before a first index build, which takes a while
            validate_question(question, settings.max_question_chars)
        except QuestionError as exc:
            raise BadInput(str(exc)) from None
    kb = knowledge_base(settings)
    try:
        kb.check_llm()  # before a first index build, which takes a while
        kb.ensure_index()
    except (*_index_errors(), LLMUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    if question == "-":
        _ask_stream(kb, mode, as_json)
        return
    try:
        answer = kb.ask(question, mode=mode)
    except QuestionError as exc:
        raise BadInput(str(exc)) from None
    _print_answer(answer, as_json)


def _ask_stream(kb, mode: str, as_json: bool) -> None:
    """One question per line; a bad line (too long, not UTF-8...) gets an error object with its
    line number, and the stream carries on."""
    from retrieval.service import QuestionError

    for number, line in enumerate(sys.stdin, start=1):
        question = line.rstrip("\r\n")
        if not question.strip():
            continue
        try:
            _print_answer(kb.ask(question, mode=mode), as_json)
        except QuestionError as exc:
            if as_json:
                click.echo(json.dumps({"line": number, "question": printable(question)[:200], "error": str(exc)},
                                      ensure_ascii=False))
            else:
                click.echo(f"error: line {number}: {exc}", err=True)
        sys.stdout.flush()


def printable(text: str) -> str:
    """`text` with each byte that was not UTF-8 shown as U+FFFD (printing it as it is would crash)."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


def read_stdin_leniently() -> None:
    """Undecodable stdin bytes become lone surrogates instead of a UnicodeDecodeError that would
    end a whole `ask -` batch or chat; the core names them when it refuses the question."""
    stdin = sys.stdin
    if stdin is not None and hasattr(stdin, "reconfigure"):
        stdin.reconfigure(errors="surrogateescape")


NO_LLM = {"used": False, "reason": "LLM_PROVIDER=none", "dropped_sentences": 0}


def _print_answer(answer, as_json: bool) -> None:
    if as_json:
        data = answer.to_dict()
        data.setdefault("llm", NO_LLM)  # what became of an LLM answer (retrieval/synthesis.py): none was asked for
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        from bot.console import print_answer

        print_answer(answer)


@cli.command(name="eval")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--set", "changes", multiple=True, metavar="NAME=VALUE",
              help="Use another value of a tuned number of prompts/ranking.yaml (repeatable), e.g. lexical_weight=0.4.")
@click.option("--llm", "with_llm", is_flag=True,
              help="Answer through LLM_PROVIDER (checked as the bot checks it); without it, extractive answers.")
def eval_command(path: Path, mode: str, as_json: bool, changes: tuple[str, ...], with_llm: bool) -> None:
    """Recall@5, MRR, declining, key-point recall, answer language and length for a question set (JSONL)."""
    from retrieval.evaluation import EvalFileError, evaluate, load_items
    from retrieval.llm import LLMUnavailable

    settings = load_settings()
    if with_llm and settings.llm_provider == "none":
        raise BadInput("eval --llm needs LLM_PROVIDER (openai, anthropic or ollama) and its settings")
    if not with_llm:
        settings = settings.with_(llm_provider="none")  # the extractive baseline, whatever .env says
    kb = knowledge_base(settings, _tuning_with(settings, changes))
    try:
        kb.check_llm()
    except LLMUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    try:
        items = load_items(path)
    except EvalFileError as exc:
        raise BadInput(str(exc)) from None
    try:
        report = evaluate(kb, items, mode=mode)
    except _index_errors() as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    click.echo(f"questions: {len(items)} ({report.answerable} answerable, {report.unanswerable} off-topic)")
    click.echo(f"recall@5: {report.recall_at_5:.3f}   MRR: {report.mrr:.3f}")
    click.echo(f"off-topic declined: {report.declined}/{report.unanswerable}   "
               f"answerable declined: {len(report.wrongly_declined)}")
    click.echo(f"answered as partial: {report.unanswerable_partial} of the off-topic, "
               f"{len(report.partial)} of the answerable")
    if report.keypoint_recalls:
        click.echo(f"key-point recall: {report.keypoint_recall:.3f} over {len(report.keypoint_recalls)} questions "
                   f"({report.points_covered}/{report.points_total} points)")
    if report.english_answered:
        click.echo(f"English questions answered in English: {report.english_answers}/{report.english_answered}")
    if report.answer_chars:
        click.echo(f"answer length (characters): median {report.to_dict()['answer_chars_median']}, "
                   f"max {max(report.answer_chars)}")
    if report.llm_asked:
        click.echo(f"LLM answers: {report.llm_served}/{report.llm_asked} served ({report.llm_trimmed} trimmed, "
                   f"{report.llm_declined} as declines), {report.llm_dropped_sentences} sentences dropped")
        for why, count in sorted(report.llm_fallbacks.items(), key=lambda kv: -kv[1]):
            click.echo(f"  extractive instead ({count}): {why}")
    for label, ids in (("missed", report.misses), ("wrongly declined", report.wrongly_declined),
                       ("partial", report.partial),
                       ("wrongly answered", report.wrongly_answered)):
        if ids:
            click.echo(f"{label}: {', '.join(ids)}")


def _tuning_with(settings: Settings, changes: tuple[str, ...]) -> Tuning | None:
    """TUNING_FILE with `--set NAME=VALUE` changes (None: no changes); a bad one exits with status 2."""
    if not changes:
        return None
    pairs = [change.partition("=") for change in changes]
    bad = next((change for change, (_, sep, value) in zip(changes, pairs) if not sep or not value.strip()), None)
    if bad is not None:
        raise BadInput(f"--set takes NAME=VALUE, not {bad!r}")
    try:
        tuning = load_tuning(settings)
        built = [name.strip() for name, _, _ in pairs if tuning.section_of(name.strip()) == "index"]
        if built:  # eval searches the index as it is: these would change nothing
            raise BadInput(f"{built[0]} is used when the index is built: set it in a copy of prompts/ranking.yaml, "
                           "point TUNING_FILE at it and run `strategy-bot index --rebuild`")
        return tuning.with_values({name.strip(): value.strip() for name, _, value in pairs})
    except TuningError as exc:
        raise BadInput(str(exc)) from None


@cli.command()
def chat() -> None:
    """A console chat on the same core: type questions, get cited answers."""
    _chat(load_settings())


def _chat(settings: Settings) -> None:
    from bot.console import run_chat

    try:
        run_chat(knowledge_base(settings))
    except _index_errors() as exc:  # no index and none can be built, a damaged one...: say why, exit 1
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Override PORT (HTTP mode).")
def serve(port: int | None) -> None:
    """Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on PORT (/slack/events, /healthz)."""
    settings = load_settings()
    if port is not None:
        settings = settings.with_(port=port)
    _serve(settings)


def _serve(settings: Settings) -> None:
    from bot.app import SlackSetupError
    from bot.server import serve_forever
    from retrieval.llm import LLMUnavailable
    from retrieval.llm import check as check_llm
    from strategy_bot.database import DatabaseUnavailable
    from strategy_bot.legacy import LegacyImportError
    from strategy_bot.migrate import SchemaNotCurrent

    if not settings.slack_bot_token:
        raise click.UsageError("SLACK_BOT_TOKEN is not set: the bot needs it to post in Slack (see .env.example).")
    if not settings.slack_app_token and not settings.slack_signing_secret:
        raise click.UsageError("Set SLACK_APP_TOKEN for Socket Mode, or SLACK_SIGNING_SECRET for HTTP mode.")
    try:  # the bot's stores and index live there: one clear line now, not a SQLite traceback later
        settings.check_data_dir()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    logging.getLogger().setLevel(settings.log_level.upper())
    try:
        check_llm(settings)  # a misconfigured LLM_PROVIDER stops start-up with the fix, not every answer
        serve_forever(settings)
    except (SlackSetupError, LLMUnavailable, TuningError, DatabaseUnavailable, SchemaNotCurrent,
            LegacyImportError) as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
def run() -> None:
    """What `make run` does: the Slack bot when Slack is configured, else the console chat."""
    settings = load_settings()
    if settings.slack_bot_token and (settings.slack_app_token or settings.slack_signing_secret):
        _serve(settings)
        return
    click.echo("No Slack tokens configured (SLACK_BOT_TOKEN + SLACK_APP_TOKEN or SLACK_SIGNING_SECRET): "
               "starting the console chat.", err=True)
    _chat(settings)


from bot.check_command import check  # noqa: E402  (the strategy check lives in its own module)
from bot.db_command import db  # noqa: E402
from bot.settings_command import settings_command  # noqa: E402

cli.add_command(check)
cli.add_command(db)
cli.add_command(settings_command)


def main() -> None:
    from bot.logs import configure_logging

    configure_logging(logging.WARNING)  # one record per line, whatever users put in it (bot/logs.py)
    read_stdin_leniently()
    cli()


if __name__ == "__main__":
    main()
