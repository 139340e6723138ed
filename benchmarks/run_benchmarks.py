"""Speed, memory and retrieval quality of the knowledge base, in one run, as plain-text tables.

    .venv/bin/python benchmarks/run_benchmarks.py [--repeat 2] [--batch 40] [--cold-runs 3] [--set NAME=VALUE]...

What it measures (all on a fresh DATA_DIR in a temporary folder, default e5 backend):
- index build: `strategy-bot index --json` in a subprocess; wall time, the build's own time,
  chunks/s and texts embedded/s, peak RSS of that process;
- warm `ask` latency p50/p95, in-process, over the eval questions repeated `--repeat` times;
- cold start: wall time of `strategy-bot ask --json QUESTION` with an existing index (median);
- batch cost: `strategy-bot ask --json -` with N questions vs 1; the difference over N-1 is
  the marginal cost of one more question in a batch;
- peak RSS of those subprocesses (from wait4's rusage, i.e. of that process alone);
- recall@5, MRR and declines of dense-only, lexical-only and hybrid retrieval, end to end
  (`KnowledgeBase.ask(mode=...)`), on the shipped eval set and the shared one when present.

- key points covered per question, compared with benchmarks/keypoints_baseline.json (losses first;
  `--write-keypoints` makes the current run the baseline).

`--set lexical_weight=0.4` (repeatable) measures the in-process figures with another value of a tuned
number of prompts/ranking.yaml, without editing it. The machine is shared: the load average is printed
before and after, as a caveat on the timings.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench_stats import percentile  # noqa: E402
from retrieval.evaluation import EvalItem, evaluate, load_items  # noqa: E402
from retrieval.service import KnowledgeBase  # noqa: E402
from strategy_bot.settings import Settings  # noqa: E402
from strategy_bot.tuning import Tuning  # noqa: E402

KEYPOINTS_BASELINE = REPO / "benchmarks" / "keypoints_baseline.json"
EVAL_FILES = [REPO / "eval" / "strategy_qa.jsonl", REPO / "eval" / "holdout_qa.jsonl",
              REPO / "eval" / "answers_qa.jsonl", REPO / "eval" / "blind2_qa.jsonl", REPO / "eval" / "blind3_qa.jsonl",
              REPO.parent / "shared" / "eval" / "public_qa.jsonl"]
MODES = ("dense", "lexical", "hybrid")
COLD_QUESTION = "What are the advantages of a closed-source model?"


@dataclass
class Run:
    """One finished subprocess: what it printed, how long it took, how much memory it peaked at."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float


def strategy_bot() -> list[str]:
    script = Path(sys.executable).parent / "strategy-bot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


def child_env(data_dir: Path) -> dict[str, str]:
    """The current environment without any strategy-bot setting, then DATA_DIR (the default corpus and model)."""
    names = {f.name.upper() for f in fields(Settings)}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update({"DATA_DIR": str(data_dir), "EMBEDDING_BACKEND": "e5", "PYTHONIOENCODING": "utf-8"})
    return env


def run_measured(args: list[str], data_dir: Path, stdin_text: str = "") -> Run:
    """Run `strategy-bot ARGS`, timing it and reading its own peak RSS from wait4 (not the tree's max)."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stdin, \
            tempfile.TemporaryFile("w+", encoding="utf-8") as out, \
            tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        stdin.write(stdin_text)
        stdin.seek(0)
        started = time.perf_counter()
        process = subprocess.Popen([*strategy_bot(), *args], cwd=data_dir.parent, env=child_env(data_dir),
                                   stdin=stdin, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        run = Run(process.returncode, out.read(), err.read(), seconds, usage.ru_maxrss / 1024)
    if run.returncode != 0:
        raise SystemExit(f"strategy-bot {' '.join(args[:2])} failed ({run.returncode}):\n{run.stderr[-2000:]}")
    return run


def note(message: str) -> None:
    """Progress on stderr, so a slow run shows where it is while stdout keeps only the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)




def table(title: str, header: list[str], rows: list[list[object]]) -> str:
    cells = [header] + [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
            for row in cells]
    return "\n".join([title, body[0], line, *body[1:], ""])


# --- the measurements -------------------------------------------------------------------------------


def bench_build(data_dir: Path) -> dict:
    run = run_measured(["index", "--json"], data_dir)
    summary = json.loads(run.stdout)
    return {"wall_s": run.seconds, "build_s": summary["seconds"], "documents": summary["documents"],
            "chunks": summary["chunks"], "embedded": summary["embedded"], "peak_rss_mb": run.peak_rss_mb}


def bench_warm(kb: KnowledgeBase, questions: list[str], repeat: int) -> dict:
    kb.ask(questions[0])  # the first query pays one-off costs (model warm-up); the cold start covers those
    latencies = []
    for _ in range(repeat):
        for question in questions:
            started = time.perf_counter()
            kb.ask(question)
            latencies.append((time.perf_counter() - started) * 1000)
    return {"n": len(latencies), "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "max_ms": max(latencies)}


def bench_cold(data_dir: Path, runs: int) -> dict:
    measured = [run_measured(["ask", "--json", COLD_QUESTION], data_dir) for _ in range(runs)]
    for run in measured:
        json.loads(run.stdout)  # it did answer
    return {"median_s": statistics.median(r.seconds for r in measured), "min_s": min(r.seconds for r in measured),
            "max_s": max(r.seconds for r in measured), "peak_rss_mb": max(r.peak_rss_mb for r in measured)}


def bench_batch(data_dir: Path, questions: list[str], runs: int) -> dict:
    """`ask --json -` with 1 and with N questions; (T_N - T_1) / (N - 1) per extra question."""
    def timed(batch: list[str]) -> tuple[float, float]:
        results = [run_measured(["ask", "--json", "-"], data_dir, "\n".join(batch) + "\n") for _ in range(runs)]
        for result in results:
            assert len(result.stdout.splitlines()) == len(batch), "one JSON line per question"
        return statistics.median(r.seconds for r in results), max(r.peak_rss_mb for r in results)

    one, _ = timed(questions[:1])
    many, rss = timed(questions)
    return {"n": len(questions), "one_s": one, "many_s": many,
            "marginal_ms": (many - one) / (len(questions) - 1) * 1000, "peak_rss_mb": rss}


def bench_quality(kb: KnowledgeBase, sets: dict[str, list[EvalItem]],
                  points: dict[str, list[int]] | None = None) -> tuple[list[list[object]], list[list[object]]]:
    """Retrieval per mode, and what the reader gets (the hybrid answers): key-point recall over the
    shown text and the quotes' originals, English questions answered in English, coverage, length.
    `points` collects each question's [covered, total] key points (the hybrid answers)."""
    rows, answers = [], []
    for name, items in sets.items():
        for mode in MODES:
            report = evaluate(kb, items, mode=mode)
            if mode == "hybrid" and points is not None and name != "all":
                points.update({f"{name}:{qid}": list(pair) for qid, pair in report.points_by_question.items()})
            rows.append([name, mode, report.answerable, report.recall_at_5, report.mrr,
                         f"{report.declined}/{report.unanswerable}", len(report.wrongly_declined)])
            if mode == "hybrid":
                answers.append([name, report.keypoint_recall, f"{report.points_covered}/{report.points_total}",
                                f"{report.english_answers}/{report.english_answered}",
                                f"{len(report.partial)}/{report.answerable}",
                                f"{report.declined + report.unanswerable_partial}/{report.unanswerable}",
                                report.to_dict()["answer_chars_median"]])
    return rows, answers


def keypoint_changes(now: dict[str, list[int]], baseline: dict[str, list[int]]) -> list[list[object]]:
    """Questions whose covered key points differ from the baseline, losses first: a change that
    moves the mean a little may still lose a whole answer somewhere, and this says where."""
    changed = [[qid, f"{baseline[qid][0]}/{baseline[qid][1]}", f"{pair[0]}/{pair[1]}", pair[0] - baseline[qid][0]]
               for qid, pair in now.items() if qid in baseline and pair[0] != baseline[qid][0]]
    return sorted(changed, key=lambda row: (row[3], row[0]))


# --- the run --------------------------------------------------------------------------------------------


def load_eval_sets() -> dict[str, list[EvalItem]]:
    sets = {path.name: load_items(path) for path in EVAL_FILES if path.is_file()}
    if len(sets) > 1:
        sets["all"] = [item for items in list(sets.values()) for item in items]
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="rounds over the eval questions for warm latency")
    parser.add_argument("--batch", type=int, default=40, help="questions in the `ask --json -` batch")
    parser.add_argument("--cold-runs", type=int, default=3, help="runs of each subprocess measurement (median)")
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="NAME=VALUE",
                        help="another value of a tuned number of prompts/ranking.yaml for the in-process figures "
                             "(warm latency, quality); repeatable")
    parser.add_argument("--write-keypoints", action="store_true",
                        help=f"write each question's key points covered to {KEYPOINTS_BASELINE.name} "
                             "(the baseline later runs are compared with)")
    args = parser.parse_args()
    tuning = Tuning.load().with_values(dict(change.split("=", 1) for change in args.changes))

    sets = load_eval_sets()
    questions = [item.question for item in sets.get("all") or next(iter(sets.values()))]
    print(f"strategy-bot benchmark — {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    print(f"eval sets: {', '.join(f'{k} ({len(v)})' for k, v in sets.items())}\n", flush=True)

    with tempfile.TemporaryDirectory(prefix="strategy-bot-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        note("building the index (strategy-bot index --json)")
        build = bench_build(data_dir)
        kb = KnowledgeBase(Settings(data_dir=data_dir), tuning=tuning)
        kb.ensure_index()
        note(f"warm latency: {len(questions)} questions x {args.repeat}")
        warm = bench_warm(kb, questions, args.repeat)
        note("cold start")
        cold = bench_cold(data_dir, args.cold_runs)
        note("batch cost")
        batch = bench_batch(data_dir, questions[: max(2, args.batch)], args.cold_runs)
        note("retrieval quality: dense, lexical, hybrid")
        points: dict[str, list[int]] = {}
        quality, answers = bench_quality(kb, sets, points)

    print(table("Speed and memory", ["measure", "value", "unit", "notes"], [
        ["index build (wall, CLI)", build["wall_s"], "s", f"{build['documents']} docs, {build['chunks']} chunks, "
                                                          f"{build['embedded']} texts embedded"],
        ["index build (build only)", build["build_s"], "s", "BuildSummary.seconds"],
        ["index build throughput", build["chunks"] / build["build_s"], "chunks/s", ""],
        ["embedding throughput", build["embedded"] / build["build_s"], "texts/s",
         "chunks + glosses + sentences + background"],
        ["peak RSS, index build", build["peak_rss_mb"], "MB", ""],
        ["warm ask p50", warm["p50_ms"], "ms", f"in-process, {warm['n']} questions"],
        ["warm ask p95", warm["p95_ms"], "ms", f"max {warm['max_ms']:.1f} ms"],
        ["cold start to first answer", cold["median_s"], "s",
         f"`ask --json`, median of {args.cold_runs} (min {cold['min_s']:.2f}, max {cold['max_s']:.2f})"],
        ["peak RSS, cold ask", cold["peak_rss_mb"], "MB", ""],
        ["batch `ask --json -`, 1 question", batch["one_s"], "s", f"median of {args.cold_runs}"],
        [f"batch `ask --json -`, {batch['n']} questions", batch["many_s"], "s", f"median of {args.cold_runs}"],
        ["marginal cost per question", batch["marginal_ms"], "ms", "(T_N - T_1) / (N - 1)"],
        ["peak RSS, batch ask", batch["peak_rss_mb"], "MB", ""],
    ]))
    print(table("Retrieval quality (end to end: KnowledgeBase.ask(mode=...))",
                ["eval set", "mode", "answerable", "recall@5", "MRR", "off-topic declined", "answerable declined"],
                quality))
    print(table("Answers (hybrid): what the reader gets",
                ["eval set", "key-point recall", "points", "English in English", "answerable partial",
                 "off-topic declined or partial", "median chars"], answers))
    if args.write_keypoints:
        KEYPOINTS_BASELINE.write_text(json.dumps(points, indent=0, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {KEYPOINTS_BASELINE.relative_to(REPO)}")
    elif KEYPOINTS_BASELINE.is_file():
        changes = keypoint_changes(points, json.loads(KEYPOINTS_BASELINE.read_text(encoding="utf-8")))
        print(table(f"Key points per question against {KEYPOINTS_BASELINE.relative_to(REPO)} (losses first)",
                    ["question", "baseline", "now", "change"], changes or [["(none changed)", "", "", ""]]))
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
