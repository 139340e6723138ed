"""Check evaluation question files against the corpus they are scored on.

Usage: python eval/check_eval_files.py [FILE.jsonl ...]
       (default: every eval/*.jsonl of this repository)

Why a script of its own: gold strings and key-point alternatives are matched by
exact substring against retrieved passages and quoted sentences, so one typo, a
stray Markdown `**` or a string that straddles a line break silently makes a
question unwinnable. This catches those before a figure is ever measured.

Rules (one line per problem, exit status 1 if there is any):
- each line is a JSON object with `id` (unique across all files given), `lang`
  ("en" or "zh", the question written in that language) and a non-empty `q`;
- no keys other than id, lang, q, gold, points, unanswerable, kind, follows;
- an unanswerable question has `"unanswerable": true`, a `kind` of "off_topic"
  or "near_domain", and neither gold nor points;
- an answerable question has a non-empty `gold` list whose strings contain no
  `**` and occur verbatim in a corpus document once `**` markers are removed;
- it also has 1-5 `points`, each a non-empty list of alternatives; every
  alternative is 6-20 characters and occurs inside one line of a corpus document
  (after `**` removal), not including the line's list marker ("- ", "1. ");
- `follows`, when present, names the id on the line just before.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS_DIR = REPO / "knowledge" / "corpus"
DEFAULT_FILES = sorted((REPO / "eval").glob("*.jsonl"))

ALLOWED_KEYS = {"id", "lang", "q", "gold", "points", "unanswerable", "kind", "follows"}
KINDS = {"off_topic", "near_domain"}
MIN_ALT, MAX_ALT = 6, 20
MAX_POINTS = 5
LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+")
CJK = re.compile(r"[\u4e00-\u9fff]")


def load_corpus(corpus_dir: Path = CORPUS_DIR) -> tuple[list[str], list[str]]:
    """Return the documents' texts and their lines, `**` removed and list markers stripped.

    Lines are kept separately because a point alternative must be quotable from one
    sentence: it may not run across a line break or start with a list marker.
    """
    texts = [p.read_text(encoding="utf-8").replace("**", "") for p in sorted(corpus_dir.glob("*.md"))]
    lines = [LIST_MARKER.sub("", line) for text in texts for line in text.splitlines()]
    return texts, lines


def _check_strings(value: object, what: str) -> list[str]:
    """Problems with a field that must be a non-empty list of non-empty strings."""
    if not isinstance(value, list) or not value:
        return [f"{what} must be a non-empty list"]
    return [f"{what} has a non-string or empty entry: {v!r}" for v in value if not isinstance(v, str) or not v]


def check_item(item: dict, texts: list[str], lines: list[str]) -> list[str]:
    """Problems with one question (the id and follow-up checks need the file and are done by the caller)."""
    problems = [f"unknown key {k!r}" for k in sorted(set(item) - ALLOWED_KEYS)]
    if not isinstance(item.get("id"), str) or not item["id"]:
        problems.append("missing or empty id")
    lang, q = item.get("lang"), item.get("q")
    if lang not in ("en", "zh"):
        problems.append(f"lang must be 'en' or 'zh', not {lang!r}")
    if not isinstance(q, str) or not q.strip():
        problems.append("missing or empty q")
    elif lang == "zh" and not CJK.search(q):
        problems.append("lang is zh but the question has no Chinese characters")
    elif lang == "en" and CJK.search(q):
        problems.append("lang is en but the question contains Chinese characters")

    if item.get("unanswerable") is not None:
        if item["unanswerable"] is not True:
            problems.append("unanswerable must be true when present")
        if item.get("kind") not in KINDS:
            problems.append(f"unanswerable question needs kind in {sorted(KINDS)}, has {item.get('kind')!r}")
        problems += [f"unanswerable question has {k}" for k in ("gold", "points") if k in item]
        return problems

    if "kind" in item:
        problems.append("kind is only for unanswerable questions")
    gold_problems = _check_strings(item.get("gold"), "gold")
    problems += gold_problems
    if not gold_problems:
        for g in item["gold"]:
            if "**" in g:
                problems.append(f"gold contains Markdown '**': {g!r}")
            elif not any(g in t for t in texts):
                problems.append(f"gold not found in the corpus: {g!r}")

    points = item.get("points")
    if not isinstance(points, list) or not points:
        problems.append("answerable question has no points")
        return problems
    if len(points) > MAX_POINTS:
        problems.append(f"{len(points)} points (at most {MAX_POINTS})")
    for i, alternatives in enumerate(points, 1):
        alt_problems = _check_strings(alternatives, f"point {i}")
        problems += alt_problems
        if alt_problems:
            continue
        for alt in alternatives:
            if not MIN_ALT <= len(alt) <= MAX_ALT:
                problems.append(f"point {i} alternative is {len(alt)} characters (want {MIN_ALT}-{MAX_ALT}): {alt!r}")
            if "**" in alt:
                problems.append(f"point {i} alternative contains Markdown '**': {alt!r}")
            elif not any(alt in line for line in lines):
                problems.append(f"point {i} alternative not found within one line of the corpus: {alt!r}")
    return problems


def check_file(path: Path, texts: list[str], lines: list[str], seen_ids: dict[str, str]) -> list[str]:
    """All problems of one .jsonl file, each prefixed with file:line; records ids in `seen_ids`."""
    problems: list[str] = []
    previous_id: str | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path}:{number}"
        if not raw.strip():
            problems.append(f"{where}: blank line")
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as err:
            problems.append(f"{where}: not JSON ({err.msg})")
            continue
        if not isinstance(item, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        item_id = item.get("id")
        label = f"{where} [{item_id}]"
        problems += [f"{label}: {p}" for p in check_item(item, texts, lines)]
        if isinstance(item_id, str):
            if item_id in seen_ids:
                problems.append(f"{label}: duplicate id (first at {seen_ids[item_id]})")
            else:
                seen_ids[item_id] = where
        if "follows" in item and item["follows"] != previous_id:
            problems.append(f"{label}: follows {item['follows']!r} but the line before is {previous_id!r}")
        previous_id = item_id if isinstance(item_id, str) else None
    return problems


def summary(path: Path) -> str:
    """One line of counts for a file (lines that do not parse are skipped), for the report."""
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue  # already reported by check_file
        if isinstance(item, dict):
            items.append(item)
    answerable = [i for i in items if not i.get("unanswerable")]
    unanswerable = [i for i in items if i.get("unanswerable")]
    by_lang = {lang: sum(1 for i in answerable if i.get("lang") == lang) for lang in ("en", "zh")}
    return (f"{path.name}: {len(items)} questions; answerable {len(answerable)} "
            f"(en {by_lang['en']}, zh {by_lang['zh']}; with points "
            f"{sum(1 for i in answerable if i.get('points'))}); "
            f"near_domain {sum(1 for i in unanswerable if i.get('kind') == 'near_domain')}, "
            f"off_topic {sum(1 for i in unanswerable if i.get('kind') == 'off_topic')}, "
            f"unanswerable without kind {sum(1 for i in unanswerable if i.get('kind') is None)}; "
            f"follow-ups {sum(1 for i in items if 'follows' in i)}")


def main(argv: list[str]) -> int:
    """Check the given files (or the repository's eval files); print problems and counts."""
    files = [Path(a) for a in argv] or DEFAULT_FILES
    texts, lines = load_corpus()
    seen_ids: dict[str, str] = {}
    problems: list[str] = []
    for path in files:
        found = check_file(path, texts, lines, seen_ids)
        problems += found
        print(summary(path) + ("" if not found else f"  -- {len(found)} problem(s)"))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
