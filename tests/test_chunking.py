"""How documents are cut into chunks, as executable documentation.

A chunk is what search returns and what an answer cites, so it must:
- stay inside one section and carry that section's heading path
  (`9. 附录：常见问题与解答 › Q3: …`, the document's own H1 left out: the title is shown beside it);
- treat `#` lines inside code fences as code, not as headings;
- not turn the ~370 repeated diagram lines at the end of `open-vs-closed-concepts.md` into junk chunks;
- split long prose at Chinese (。！？；) and English sentence ends, never inside a sentence;
- have an id derived from its content: same text, same id, in any run.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge.chunking import SECTION_SEPARATOR, Chunk, Chunker, collapse_repeats
from knowledge.documents import SourceDocument, load_folder
from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR

REPO = Path(__file__).resolve().parent.parent
HEADING_LINE = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
DIAGRAM_LINE = re.compile(r"^\s*AA --> ")


def make_doc(text: str, name: str = "sample") -> SourceDocument:
    """A document as the loader would produce it, without touching the disk."""
    return SourceDocument(doc_id=name, title=f"Title of {name}", path=Path(f"{name}.md"), text=text,
                          sha256=hashlib.sha256(text.encode()).hexdigest())


def headings_outside_fences(text: str) -> list[str]:
    """Heading titles of a Markdown text, skipping fenced code (what a reader sees as headings)."""
    found, in_fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING_LINE.match(line)
        if match:
            found.append(match.group(1))
    return found


@pytest.fixture(scope="module")
def shipped() -> dict[str, SourceDocument]:
    report = load_folder(DEFAULT_KNOWLEDGE_DIR)
    return {doc.doc_id: doc for doc in report.documents}


@pytest.fixture(scope="module")
def chunks(shipped) -> dict[str, list[Chunk]]:
    chunker = Chunker()
    return {doc_id: chunker.chunk(doc) for doc_id, doc in shipped.items()}


# --- sections and heading paths ---------------------------------------------------------------


def test_faq_entries_are_sub_sections_of_the_appendix(chunks):
    """`**Q3: …**` lines act as headings under `## 9. 附录：常见问题与解答`."""
    sections = [c.section for c in chunks["open-vs-closed-ip-privacy-cost"]]
    q3 = [s for s in sections if s.startswith(f"9. 附录：常见问题与解答{SECTION_SEPARATOR}Q3: ")]
    assert q3 == ["9. 附录：常见问题与解答 › Q3: 如何在大模型的开源与闭源模式选择中平衡透明度与知识产权保护？"]
    faq = [s.split(SECTION_SEPARATOR)[1][:2] for s in sections if SECTION_SEPARATOR + "Q" in s]
    assert faq == ["Q1", "Q2", "Q3", "Q4", "Q5"]


def test_heading_path_lists_every_level_below_the_title(chunks):
    sections = {c.section for c in chunks["open-vs-closed-concepts"]}
    assert "2. 核心概念与联系 › 2.2 概念间的关系 › 2.2.1 开源与闭源的关系" in sections
    assert "1. 背景介绍 › 1.3 问题研究意义" in sections
    # the H1 (both articles share it) is the path only of the text before the first H2
    assert not any(s.startswith("开源还是闭源:大模型商业化的抉择" + SECTION_SEPARATOR) for s in sections)


def test_each_chunk_stays_inside_one_section(chunks):
    """A chunk holds at most one heading, its own, as its first line; and it matches the path."""
    for doc_chunks in chunks.values():
        for chunk in doc_chunks:
            headings = headings_outside_fences(chunk.text)
            assert len(headings) <= 1, (chunk.section, headings)
            if headings:
                assert HEADING_LINE.match(chunk.text.splitlines()[0])
                assert chunk.section.endswith(headings[0]) or not chunk.section, (chunk.section, headings)


def test_a_long_section_becomes_several_chunks_with_the_same_path():
    paragraphs = "\n\n".join(f"第{i}段：开源模式能够降低企业的研发成本，并促进社区合作与快速迭代。" * 6
                             for i in range(12))
    text = f"# 标题\n\n## 第一章\n\n{paragraphs}\n\n## 第二章\n\n短短的一段。\n"
    result = Chunker(chunk_size=400).chunk(make_doc(text))
    first = [c for c in result if c.section == "第一章"]
    assert len(first) >= 3
    assert [c.section for c in result] == ["第一章"] * len(first) + ["第二章"]
    assert "短短的一段" not in "".join(c.text for c in first)


def test_no_text_of_the_shipped_documents_is_lost(shipped, chunks):
    """Every non-blank line is in some chunk, except collapsed diagram repeats, rules (`-----`) and the
    heading lines of sections that have no text of their own (those live on in their sub-sections' paths)."""
    for doc_id, doc in shipped.items():
        chunk_lines = {line.strip() for c in chunks[doc_id] for line in c.text.splitlines()}
        paths = " ".join(c.section for c in chunks[doc_id])
        for line in {line.strip() for line in doc.text.splitlines() if line.strip()} - chunk_lines:
            if re.fullmatch(r"[-=*_]{3,}", line):
                continue
            heading = HEADING_LINE.match(line)
            assert heading and heading.group(1) in paths, f"{doc_id}: lost line {line!r}"


# --- code fences ---------------------------------------------------------------------------------


def test_hash_lines_inside_code_fences_are_not_headings():
    text = (
        "# Guide\n\n## Setup\n\nInstall the tools first.\n\n"
        "```bash\n# install the package\npip install thing\n## not a heading either\n```\n\n"
        "~~~python\n# a Python comment\nprint('hi')\n~~~\n\n"
        "Then run it.\n\n## Usage\n\nCall it.\n"
    )
    result = Chunker().chunk(make_doc(text))
    assert [c.section for c in result] == ["Setup", "Usage"]
    setup = result[0].text
    assert "# install the package" in setup and "## not a heading either" in setup
    assert "# a Python comment" in setup and "Then run it." in setup


def test_python_comments_in_the_shipped_code_samples_stay_code(chunks):
    """The article's code samples are full of `# 部署模型`-style comments."""
    sections = {c.section for c in chunks["open-vs-closed-ip-privacy-cost"]}
    for comment in ("定义模型和训练数据", "部署模型", "调用内部商业应用", "公开发布模型"):
        assert not any(s.endswith(comment) for s in sections), comment
    code = "\n".join(c.text for c in chunks["open-vs-closed-ip-privacy-cost"])
    assert "# 调用内部商业应用" in code


def test_a_code_block_longer_than_a_chunk_is_split_on_line_boundaries():
    code_lines = [f"value_{i} = compute_something({i})  # 注释 {i}" for i in range(60)]
    text = "# Doc\n\n## Code\n\n```python\n" + "\n".join(code_lines) + "\n```\n"
    result = Chunker(chunk_size=400).chunk(make_doc(text))
    assert len(result) > 1 and {c.section for c in result} == {"Code"}
    pieces = {line for c in result for line in c.text.splitlines()}
    assert set(code_lines) <= pieces  # every line whole, none cut in two


# --- the repeated diagram --------------------------------------------------------------------------


def test_repeated_diagram_lines_do_not_become_junk_chunks(shipped, chunks):
    source = shipped["open-vs-closed-concepts"].text
    assert len([line for line in source.splitlines() if DIAGRAM_LINE.match(line)]) > 300  # the problem
    concept_chunks = chunks["open-vs-closed-concepts"]
    print(f"\nopen-vs-closed-concepts.md: {len(concept_chunks)} chunks")
    assert len(concept_chunks) <= 12
    for chunk in concept_chunks:
        lines = [line for line in chunk.text.splitlines() if line.strip()]
        repeated = sum(1 for line in lines if DIAGRAM_LINE.match(line))
        assert repeated <= len(lines) / 2, f"chunk {chunk.ordinal} is mostly diagram repeats"
    total = sum(1 for c in concept_chunks for line in c.text.splitlines() if DIAGRAM_LINE.match(line))
    assert 1 <= total <= 6  # a couple of cycles are kept, so the diagram still reads as one


def test_collapse_repeats_keeps_two_cycles_of_a_repeated_block():
    lines = ["start"] + ["AA --> Z", "AA --> AAAA"] * 50 + ["end"]
    assert collapse_repeats(lines) == ["start", "AA --> Z", "AA --> AAAA", "AA --> Z", "AA --> AAAA", "end"]
    assert collapse_repeats(["x"] * 3) == ["x"] * 3  # short repeats are real text
    assert collapse_repeats(["", "", "", "", "a"]) == ["", "", "", "", "a"]  # blank runs are left alone


# --- sentence ends -------------------------------------------------------------------------------------


CHINESE_ENDS = "。！？；"


def chinese_sentences(count: int) -> list[str]:
    return [f"第{i}条：开源模式能够降低企业的研发成本并促进社区合作与技术交流{CHINESE_ENDS[i % 4]}"
            for i in range(count)]


def test_long_chinese_paragraph_splits_at_sentence_ends_only():
    sentences = chinese_sentences(60)
    paragraph = "".join(sentences)  # one paragraph, no newlines, ~2000 characters
    result = Chunker().chunk(make_doc(f"# 标题\n\n## 小节\n\n{paragraph}\n"))
    assert len(result) >= 3
    for chunk in result:
        assert chunk.text[-1] in CHINESE_ENDS, chunk.text[-15:]
        assert len(chunk.text) <= Chunker().chunk_size
    for sentence in sentences:  # no sentence (and so no word) is cut in two
        assert any(sentence in chunk.text for chunk in result), sentence


def test_semicolons_and_exclamation_marks_end_sentences_too():
    sentences = [f"第{i}点需要注意的是成本；" if i % 2 else f"第{i}点非常重要！" for i in range(200)]
    result = Chunker(chunk_size=200).chunk(make_doc("# T\n\n## S\n\n" + "".join(sentences)))
    prose = [c for c in result if not HEADING_LINE.match(c.text)]  # see test_no_chunk_is_only_a_heading
    assert {c.text[-1] for c in prose} <= set("；！")
    assert all(any(s in c.text for c in result) for s in sentences)


def test_long_english_paragraph_splits_between_sentences():
    sentences = [f"Sentence {i} explains why an open model lowers research costs for companies." for i in range(40)]
    result = Chunker().chunk(make_doc("# Title\n\n" + " ".join(sentences)))
    assert len(result) >= 3
    for sentence in sentences:
        assert any(sentence in c.text for c in result), sentence
    assert all(c.text.endswith(".") for c in result)


def test_an_overlong_chinese_sentence_is_cut_at_commas_not_inside_words():
    clauses = [f"第{i}个因素是开源社区的协作效率" for i in range(80)]
    sentence = "，".join(clauses) + "。"
    result = Chunker(chunk_size=300).chunk(make_doc("# T\n\n## S\n\n" + sentence))
    assert len(result) > 1
    for clause in clauses:
        assert any(clause in c.text for c in result), clause


def is_heading_only(chunk: Chunk) -> bool:
    """Nothing but heading lines and horizontal rules: nothing a question could be answered from."""
    lines = [line.strip() for line in chunk.text.splitlines() if line.strip()]
    return all(HEADING_LINE.match(line) or re.fullmatch(r"[-=*_]{3,}", line) for line in lines)


def test_no_chunk_is_only_a_heading(chunks):
    long_paragraph = "".join(chinese_sentences(60))
    synthetic = Chunker(chunk_size=200).chunk(make_doc(f"# T\n\n## S\n\n{long_paragraph}\n"))
    shipped_chunks = [c for doc_chunks in chunks.values() for c in doc_chunks]
    assert [c.text for c in synthetic + shipped_chunks if is_heading_only(c)] == []


# --- stable ids --------------------------------------------------------------------------------------


def ids_of(chunks_by_doc: dict[str, list[Chunk]]) -> dict[str, list[str]]:
    return {doc_id: [c.chunk_id for c in doc_chunks] for doc_id, doc_chunks in chunks_by_doc.items()}


def test_same_content_gives_the_same_ids(chunks):
    reloaded = load_folder(DEFAULT_KNOWLEDGE_DIR).documents
    assert ids_of({doc.doc_id: Chunker().chunk(doc) for doc in reloaded}) == ids_of(chunks)


def test_ids_do_not_depend_on_the_process(chunks):
    """Another interpreter (with another hash seed) computes the same ids: they are content hashes."""
    script = ("import json; from knowledge.documents import load_folder; from knowledge.chunking import Chunker; "
              "from strategy_bot.settings import DEFAULT_KNOWLEDGE_DIR; "
              "print(json.dumps({d.doc_id: [c.chunk_id for c in Chunker().chunk(d)] "
              "for d in load_folder(DEFAULT_KNOWLEDGE_DIR).documents}))")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == ids_of(chunks)


def test_ids_are_unique(chunks):
    ids = [c.chunk_id for doc_chunks in chunks.values() for c in doc_chunks]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)


def test_editing_a_section_changes_only_that_sections_ids(shipped, chunks):
    doc = shipped["open-vs-closed-ip-privacy-cost"]
    target = "在智能客服系统中"
    assert doc.text.count(target) == 1
    edited = SourceDocument(doc_id=doc.doc_id, title=doc.title, path=doc.path,
                            text=doc.text.replace(target, "在智能客服（呼叫中心）系统中"), sha256="edited")
    before = {c.chunk_id: c for c in chunks[doc.doc_id]}
    after = {c.chunk_id: c for c in Chunker().chunk(edited)}
    changed_before = [c.section for i, c in before.items() if i not in after]
    changed_after = [c.section for i, c in after.items() if i not in before]
    assert changed_before == changed_after == ["6. 实际应用场景 › 6.1 智能客服系统"]


def test_the_same_text_in_two_documents_gets_two_ids():
    text = "# T\n\n## S\n\nThe same paragraph.\n"
    (a,), (b,) = Chunker().chunk(make_doc(text, "a")), Chunker().chunk(make_doc(text, "b"))
    assert a.text == b.text and a.chunk_id != b.chunk_id
