"""`strategy-bot eval --llm` figures against the loopback fake OpenAI server, for two scripted models.

- `faithful`: replies with the extractive answer's own sentences (in the asker's language), each with
  its correct `[n]`: what a careful model would write. Every sentence should be kept; what is
  dropped measures how often the support check rejects a right sentence.
- `issue14`: replies as the 1.5B model of issue 14 did: markers only, list numbering, an invented
  fact with a valid marker, a copied sentence under the wrong number. Nothing should be served
  as written; the figures should equal the extractive ones.

Both go through the real ChatOpenAI client and the same checks as the bot; printed beside the
extractive baseline (LLM_PROVIDER=none).

    .venv/bin/python benchmarks/llm_eval_fake.py [--data-dir data] [--questions eval/answers_qa.jsonl]
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from fake_openai import FakeOpenAI, Recorded  # noqa: E402
from retrieval.evaluation import evaluate, load_items  # noqa: E402
from retrieval.service import KnowledgeBase  # noqa: E402
from strategy_bot.settings import Settings  # noqa: E402

ISSUE14 = ["[2]", "[1] [2]", "[1] BERT uses the Apache License 2.0.",
           "[1] Open-source models provide IP protection by sharing the code.\n[2] Transparency always matters "
           "more than intellectual property.\n[3] Licensing is the only answer.",
           "[1] [2] Open-source models provide IP protection by sharing the code.\n\n[1] [2] Closed models are "
           "always more transparent than open ones."]
SENT: list[int] = []  # sentences the faithful fake wrote, per reply
FIGURES = ("keypoint_recall", "points_covered", "points_total", "english_answered_in_english",
           "answerable_declined", "unanswerable_declined", "answer_chars_median")


def question_of(request: Recorded) -> str:
    user = request.message("user")
    return user.split("<question>")[1].split("</question>")[0].strip()


def faithful(extractive_kb: KnowledgeBase):
    import html

    def reply(request: Recorded) -> str:
        conversation = request.message("user").split("<conversation>")[1].split("</conversation>")[0]
        history = [html.unescape(line.split("Question: ", 1)[1]) for line in conversation.splitlines()
                   if line.startswith("Question: ")]  # the bot searched a follow-up with its thread
        answer = extractive_kb.ask(html.unescape(question_of(request)), history=history[-1:])
        SENT.append(len(answer.quotes))
        end = "" if answer.language == "zh" else "."
        return " ".join(f"{q.text.rstrip('。.')} [{q.n}]{'。' if answer.language == 'zh' else end}"
                        for q in answer.quotes)
    return reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "data")
    parser.add_argument("--questions", type=Path, default=REPO / "eval" / "answers_qa.jsonl")
    args = parser.parse_args()
    items = load_items(args.questions)
    base = KnowledgeBase(Settings(data_dir=args.data_dir))
    base.ensure_index()
    server = FakeOpenAI().start()
    rows = {"extractive": evaluate(base, items).to_dict()}
    settings = Settings(data_dir=args.data_dir, llm_provider="openai", llm_model="fake", llm_base_url=server.url,
                        llm_timeout_s=30.0)
    script = itertools.cycle(ISSUE14)
    for name, responder in (("faithful", faithful(base)), ("issue14", lambda _request: next(script))):
        server.respond(responder)
        llm_kb = KnowledgeBase(settings, base.embeddings)
        rows[name] = evaluate(llm_kb, items).to_dict()
    server.stop()
    print(f"{args.questions.name}: {len(items)} questions")
    print(f"the faithful fake wrote {sum(SENT)} sentences in {len(SENT)} replies")
    for name, report in rows.items():
        print(f"\n{name}: " + ", ".join(f"{key} {report[key]}" for key in FIGURES))
        if "llm" in report:
            print("  llm: " + json.dumps(report["llm"], ensure_ascii=False))


if __name__ == "__main__":
    main()
