"""Calibrating the support check of LLM answers (prompts/llm_answer.yaml, `support`).

Each line of prompts/support_pairs.jsonl is a sentence a model might write, the question it
answers, the passage it cites (a substring of that passage) and whether that passage
supports it: paraphrases, translations across English and Chinese, and unsupported ones
(invented facts and figures, the opposite claim, the issue-14 replies verbatim). The
question is searched as the bot does, the cited passage found among its citations, and
the sentence scored as `SupportChecker` scores it. Prints each score, then for each
threshold how many supported sentences it keeps and how many unsupported ones it lets
through, with and without the figure rule.

    .venv/bin/python benchmarks/support_calibration.py [--data-dir data]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]
from knowledge.language import language_of  # noqa: E402
from retrieval.service import KnowledgeBase  # noqa: E402
from retrieval.support import _best, _unsupported_figure, split_sentences  # noqa: E402
from retrieval.synthesis import load_prompts  # noqa: E402
from strategy_bot.settings import Settings  # noqa: E402

PAIRS = REPO / "prompts" / "support_pairs.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "data")
    args = parser.parse_args()
    kb = KnowledgeBase(Settings(data_dir=args.data_dir))
    kb.ensure_index()
    rows, verdicts = [], []
    checker = kb.support_checker()
    for line in PAIRS.read_text(encoding="utf-8").splitlines():
        pair = json.loads(line)
        answer = kb.ask(pair["q"])
        cited = [c for c in answer.citations if pair["cites"] in c.text or pair["cites"] in c.section]
        if not cited:
            print(f"{pair['id']}: no citation of {pair['q']!r} contains {pair['cites']!r}", file=sys.stderr)
            continue
        evidence = {e.n: e for e in kb.passage_evidence(answer.citations)}
        vector = kb.embeddings.embed_queries([pair["claim"]])[0]
        n = cited[0].n
        score = _best(evidence[n], vector)
        other = max((_best(e, vector) for m, e in evidence.items() if m != n), default=-1.0)
        figure = _unsupported_figure(pair["claim"], [evidence[n]])
        [verdict] = checker.judge(split_sentences(f"{pair['claim']} [{n}]"), list(evidence.values()))
        verdicts.append((pair, verdict))
        rows.append((pair, score, other, figure))
        print(f"{pair['id']} {'+' if pair['supported'] else '-'} cited {score:.4f} other {other:.4f} "
              f"figure-missing {figure} -> {'kept' if verdict.keep else verdict.reason}  {pair['claim'][:60]}")
    margin = float(load_prompts()["support"]["miscite_margin"])
    for language in ("en", "zh"):
        subset = [r for r in rows if language_of(r[0]["claim"]) == language]
        supported = [(s, o) for p, s, o, _ in subset if p["supported"]]
        bad = [(s, o, f) for p, s, o, f in subset if not p["supported"]]
        print(f"\n{language} sentences: {len(supported)} supported (cited score min "
              f"{min(s for s, _ in supported):.4f}), {len(bad)} not (max {max(s for s, _, _ in bad):.4f})")
        print("threshold  supported kept  unsupported passed (score only / + miscite margin / + figure rule)")
        for threshold in np.arange(0.88, 0.9451, 0.005):
            kept = sum(s >= threshold and o - s <= margin for s, o in supported)
            passed = sum(s >= threshold for s, _, _ in bad)
            passed_m = sum(s >= threshold and o - s <= margin for s, o, _ in bad)
            passed_f = sum(s >= threshold and o - s <= margin and not f for s, o, f in bad)
            print(f"  {threshold:.3f}    {kept:2d}/{len(supported)}          "
                  f"{passed:2d} / {passed_m:2d} / {passed_f:2d} of {len(bad)}")

    good = [v for p, v in verdicts if p["supported"]]
    bad = [(p, v) for p, v in verdicts if not p["supported"]]
    print(f"\nwith prompts/llm_answer.yaml as it is: supported kept {sum(v.keep for v in good)}/{len(good)}, "
          f"unsupported passed {sum(v.keep for _, v in bad)}/{len(bad)} "
          f"({', '.join(p['id'] for p, v in bad if v.keep) or 'none'})")


if __name__ == "__main__":
    main()

