"""The eval question files stay scoreable: every gold string and key-point alternative is quotable
from the corpus, and the checker that guards this rejects the mistakes it exists for."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_eval_files", REPO / "eval" / "check_eval_files.py")
checker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checker)


def test_repository_eval_files_pass_the_checker(capsys):
    assert checker.main([]) == 0, capsys.readouterr().err


def _write(tmp_path: Path, *items: dict) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    return path


GOOD = {"id": "t1", "lang": "en", "q": "What is open source?", "gold": ["开源与闭源的区别与联系"],
        "points": [["可被公众免费使用"]]}


def test_a_well_formed_file_passes(tmp_path):
    follow_up = {"id": "t2", "lang": "zh", "q": "那闭源呢？", "gold": ["只允许特定用户使用"],
                 "points": [["只允许特定用户使用"]], "follows": "t1"}
    off_topic = {"id": "t3", "lang": "en", "q": "Lunch?", "unanswerable": True, "kind": "off_topic"}
    assert checker.main([str(_write(tmp_path, GOOD, follow_up, off_topic))]) == 0


def test_each_kind_of_mistake_is_reported(tmp_path, capsys):
    path = _write(
        tmp_path,
        GOOD,
        dict(GOOD, q="duplicate id"),
        dict(GOOD, id="t2", gold=["**开源**"]),                          # Markdown left in gold
        dict(GOOD, id="t3", points=[["1. 技术透明与创新：开源"]]),         # includes the list marker
        dict(GOOD, id="t4", points=[["可被公众免费使用，而闭源则保留知识产权，只允许特定用户使用"]]),  # too long
        dict(GOOD, id="t5", points=[["形成良性循环。\n\n2. 知识产权"]]),   # spans lines
        {"id": "t6", "lang": "en", "q": "Weather?", "unanswerable": True},  # no kind
        dict(GOOD, id="t7", follows="t1"),                                 # not the line before
    )
    assert checker.main([str(path)]) == 1
    err = capsys.readouterr().err
    for expected in ("[t1]: duplicate id", "[t2]: gold contains Markdown", "[t3]: point 1 alternative not found",
                     "[t4]: point 1 alternative is 29 characters", "[t5]: point 1 alternative not found",
                     "[t6]: unanswerable question needs kind", "[t7]: follows 't1'"):
        assert expected in err
