"""`strategy-bot check`: the /strategy-check questionnaire in the terminal.

Same decision model, engine and cited report as the Slack flow; only the asking differs
(click prompts, or `--answers key=value,...` for scripts). Bad answers exit with status 2 and
say which item is wrong and what the valid choices are.
"""
from __future__ import annotations

import json
from typing import Mapping

import click

from decision import AnswerError, DecisionModel, DecisionModelError, evaluate, load_decision_model, parse_answers

LIST_HINT = "run `strategy-bot check --list` to see every question key and its values"


class BadAnswers(click.ClickException):
    """Exit status 2, like the other commands' refused input."""

    exit_code = 2


@click.command()
@click.option("--answers", "answers_text", metavar="KEY=VALUE,...",
              help="Answer every question without prompting, e.g. data_sensitivity=regulated,...")
@click.option("--context", default="", help="What you are deciding about (shown with the result).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option("--list", "list_questions", is_flag=True, help="List the question keys and their values.")
def check(answers_text: str | None, context: str, as_json: bool, list_questions: bool) -> None:
    """Open source, closed source or hybrid? A guided decision with cited reasons."""
    from bot.cli_base import knowledge_base, load_settings  # looked up per call: tests replace knowledge_base

    settings = load_settings()
    model = _load_model(settings.decision_model_file)
    if list_questions:
        _print_questions(model)
        return
    if answers_text is not None:
        answers = _parse(answers_text, model)
    else:
        answers = ask_interactively(model)
        click.echo(f"(to repeat: strategy-bot check --answers {answers_summary(model, answers)})\n", err=True)
    decision = evaluate(model, answers)
    report = _report(model, decision, knowledge_base(settings), context)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        click.echo(report.to_markdown(), nl=False)


def _load_model(path) -> DecisionModel:
    try:
        return load_decision_model(path)
    except DecisionModelError as exc:
        raise click.ClickException(f"decision model rejected: {exc}") from None


def _parse(text: str, model: DecisionModel) -> dict[str, str]:
    """Non-interactive answers must be valid and complete; the error names the problem."""
    try:
        answers = parse_answers(text, model)
        evaluate(model, answers)  # raises AnswerError listing missing questions
    except AnswerError as exc:
        raise BadAnswers(f"{exc} ({LIST_HINT})") from None
    return answers


def ask_interactively(model: DecisionModel) -> dict[str, str]:
    """One question at a time with numbered options; click re-asks on an out-of-range number."""
    answers: dict[str, str] = {}
    total = len(model.questions)
    for number, question in enumerate(model.questions, start=1):
        click.echo(click.style(f"\n({number}/{total}) {question.text}", bold=True), err=True)
        if question.help:
            click.echo(f"    {question.help}", err=True)
        for index, option in enumerate(question.options, start=1):
            click.echo(f"  {index}. {option.label}", err=True)
        choice = click.prompt("Your choice", type=click.IntRange(1, len(question.options)), err=True)
        answers[question.key] = question.options[choice - 1].value
    return answers


def _report(model: DecisionModel, decision, kb, context: str):
    from decision.report import build_report
    from retrieval.embeddings import EmbeddingError
    from retrieval.index_store import IndexError_

    try:
        if not kb.index_exists():
            click.echo("No index yet: building it from the knowledge folder first (about a minute)…", err=True)
        return build_report(model, decision, kb, context=context)
    except (IndexError_, EmbeddingError) as exc:
        raise click.ClickException(str(exc)) from None


def _print_questions(model: DecisionModel) -> None:
    for question in model.questions:
        click.echo(f"{question.key}: {question.text}")
        for option in question.options:
            click.echo(f"  {question.key}={option.value}  ({option.label})")


def answers_summary(model: DecisionModel, answers: Mapping[str, str]) -> str:
    """key=value,... for the given answers in asking order (to repeat a run non-interactively)."""
    return ",".join(f"{k}={answers[k]}" for k in model.question_keys if k in answers)
