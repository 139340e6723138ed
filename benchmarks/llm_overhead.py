"""What the LLM answer path adds on our side, and how big its prompts are.

Runs the eval questions three ways over the same index: extractive (LLM_PROVIDER=none),
through the real ChatOpenAI client to the loopback fake server of the tests (which
answers at once, so the difference is our own cost: prompt, HTTP, citation check), and
streamed. Prints latency percentiles, the time to the first streamed draft, and the
prompt's size in characters (what a provider bills, roughly, in tokens).

    .venv/bin/python benchmarks/llm_overhead.py [--data-dir data] [--questions 20]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from bench_stats import percentile  # noqa: E402
from fake_openai import FakeOpenAI, Reply  # noqa: E402
from retrieval.evaluation import load_items  # noqa: E402
from retrieval.service import KnowledgeBase  # noqa: E402
from strategy_bot.settings import Settings  # noqa: E402

WRITTEN = ("Open-sourcing moves the cost from licences to deployment and operations [1]. Closed models keep "
           "the intellectual property in-house [2]. Hybrid release splits the difference [3].")


def questions(limit: int) -> list[str]:
    return [item.question for item in load_items(REPO / "eval" / "strategy_qa.jsonl")][:limit]


def percentiles(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):7.1f} ms   p95 {percentile(values, 95):7.1f} ms"


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "data")
    parser.add_argument("--questions", type=int, default=20)
    args = parser.parse_args()
    fake = FakeOpenAI().start()
    try:
        run(args.data_dir, questions(args.questions), fake)
    finally:
        fake.stop()


def run(data_dir: Path, asked: list[str], fake: FakeOpenAI) -> None:
    plain = KnowledgeBase(Settings(data_dir=data_dir))
    plain.ensure_index()
    llm = KnowledgeBase(Settings(data_dir=data_dir, llm_provider="openai", llm_model="fake-model",
                                 llm_api_key="sk-bench", llm_base_url=fake.url, llm_max_retries=0),
                        plain.embeddings)
    llm.ensure_index()
    llm.check_llm()
    for question in asked[:2]:  # warm both paths (model, client, caches)
        plain.ask(question)
        fake.reply(WRITTEN)
        llm.ask(question)
    extractive, generated, generate_only, first_draft, streamed, prompt_chars = [], [], [], [], [], []
    for question in asked:
        extractive.append(timed(lambda question=question: plain.ask(question)))
        fake.reply(WRITTEN)
        answer = llm.ask(question)
        generated.append(answer.timings_ms["total"])
        if answer.generated_by != "extractive":
            generate_only.append(answer.timings_ms["generate"])
            prompt_chars.append(sum(len(m["content"]) for m in fake.requests[0].messages))
        fake.reply(Reply(WRITTEN, chunk_chars=4))
        started = time.perf_counter()
        drafts = [((time.perf_counter() - started) * 1000, draft) for draft in llm.stream_answer(question)]
        if drafts[-1][1].answer.generated_by != "extractive":
            first_draft.append(drafts[0][0])
            streamed.append(drafts[-1][0])
    print(f"questions: {len(asked)} (LLM answers accepted: {len(generate_only)})")
    print(f"extractive ask          {percentiles(extractive)}")
    print(f"LLM ask (fake server)   {percentiles(generated)}")
    if generate_only:
        print(f"  of which generate     {percentiles(generate_only)}")
        print(f"prompt size             mean {statistics.mean(prompt_chars):,.0f} chars, "
              f"max {max(prompt_chars):,} chars (system + passages + question)")
    if first_draft:
        print(f"stream: first draft     {percentiles(first_draft)}")
        print(f"stream: checked answer  {percentiles(streamed)}")


if __name__ == "__main__":
    main()
