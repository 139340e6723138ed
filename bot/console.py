"""Terminal rendering for the CLI: answers with sources, progress bars, the chat loop."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.blocks.answer import translated_originals
from retrieval.answer import Answer, format_citation, load_templates

console = Console(highlight=False)
console.soft_wrap = not console.is_terminal  # piped output: one line per line, no wrapping at 80
err_console = Console(stderr=True, highlight=False)
QUOTE_CHARS = 240


def print_answer(answer: Answer) -> None:
    templates = load_templates()
    console.print(escape(answer.answer))
    listed = answer.closest if answer.abstained else answer.citations
    if not listed:
        return
    heading = templates["closest_intro" if answer.abstained else "sources_heading"][answer.language]
    console.print(f"\n[bold]{escape(heading)}[/bold]")
    originals = translated_originals(answer)  # what the translated quotes render, as written
    used = {quote.n for quote in answer.quotes}
    for citation in listed:
        if used and citation.n == len(used) + 1 and citation.n not in used:
            console.print(f"[bold]{escape(templates['see_also'][answer.language])}[/bold]")
        console.print(f"[cyan]{escape(format_citation(citation))}[/cyan]")
        quote = " ".join(originals.get(citation.n, citation.text).split())
        console.print(f"    [dim]{escape(quote[:QUOTE_CHARS])}{'…' if len(quote) > QUOTE_CHARS else ''}[/dim]")


@contextmanager
def progress_bar(disabled: bool = False) -> Iterator:
    """A `Progress` callback for index builds that draws a bar per stage on stderr."""
    if disabled:
        yield None
        return
    if not err_console.is_terminal:
        yield _progress_lines()
        return
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=False) as progress:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=max(total, 1))
            progress.update(tasks[stage], completed=done if total else 1, total=max(total, 1))

        yield update


def _progress_lines(every_s: float = 2.0):
    """Progress as plain stderr lines (logs, pipes): a stage's start and end, and every few seconds."""
    last = {"stage": "", "at": 0.0}

    def update(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != last["stage"] or done >= total or now - last["at"] >= every_s:
            print(f"embedding {stage}: {done}/{total}", file=sys.stderr, flush=True)
            last.update(stage=stage, at=now)

    return update


def print_build_summary(summary) -> None:
    console.print(
        f"Indexed {summary.documents} documents, {summary.chunks} chunks in {summary.seconds:.1f} s: "
        f"added {len(summary.added)}, changed {len(summary.changed)}, removed {len(summary.removed)}, "
        f"unchanged {len(summary.unchanged)} (embedded {summary.embedded} texts, reused {summary.reused}).",
        soft_wrap=True,
    )
    for label, ids in (("added", summary.added), ("changed", summary.changed), ("removed", summary.removed),
                       ("unchanged", summary.unchanged)):
        if ids:
            console.print(f"  {label}: {escape(', '.join(ids))}", soft_wrap=True)
    if summary.translated:
        console.print(f"  translated {summary.translated} new sentences with the LLM provider (cached in DATA_DIR)")
    if summary.repaired:
        repaired = escape(", ".join(summary.repaired))
        console.print(f"  repaired the damaged index ({repaired}): what was intact was reused",
                      soft_wrap=True)
    for name, reason in summary.skipped:
        err_console.print(f"  [yellow]skipped {escape(name)}: {escape(reason)}[/yellow]", soft_wrap=True)


def run_chat(kb) -> None:
    """Read questions until EOF or 'quit'; errors are shown and the loop goes on."""
    from retrieval.service import QuestionError

    interactive = sys.stdin.isatty()
    if interactive:
        console.print("[bold]strategy-bot[/bold] — ask about open vs closed model strategy "
                      "(Ctrl-D or 'quit' to leave).")
    with console.status("Loading the knowledge base…") if interactive else _nothing():
        kb.ensure_index()
    history: list[str] = []  # the earlier questions: they steer the search of a follow-up
    transcript: list[tuple[str, str]] = []  # earlier answered turns: what an LLM answer reads, as in Slack
    while True:
        try:
            question = console.input("[bold green]?[/bold green] ") if interactive else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            break
        if not interactive and question == "":
            break
        question = question.strip()
        if question.lower() in {"quit", "exit", ":q"}:
            break
        if not question:
            continue
        try:
            answer = kb.ask(question, history=history, transcript=transcript[-kb.settings.llm_history_turns:])
        except QuestionError as exc:  # too long, not UTF-8...: say why and read the next question
            err_console.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)
            continue
        print_answer(answer)
        console.print()
        history = (history + [question])[-3:]
        if not answer.abstained:
            transcript.append((question, answer.answer))


@contextmanager
def _nothing() -> Iterator[None]:
    yield
