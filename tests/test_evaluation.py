"""Answer-level evaluation: what the reader gets, not only which passage was found.

`strategy-bot eval` reports key-point recall (the share of a question's key points the
answer shows), the share of English questions answered in English, and answer length,
beside recall@5 and MRR. A follow-up (`follows`) is asked with its thread's question.
"""
from __future__ import annotations

import json

from retrieval.evaluation import EvalItem, covered_points, evaluate, load_items


def test_a_point_is_covered_by_any_of_its_alternatives_ignoring_markup_and_spaces():
    shown = "闭源模式的优点：**企业对模型拥有完全控制权** [1]\n运营和维护 成本可控 [2]"
    points = [["企业对模型拥有完全控制权", "完全控制模型的商业应用"], ["运营和维护成本可控"], ["保护用户隐私"]]
    assert covered_points(points, shown) == [True, True, False]


def test_eval_files_carry_points_and_follow_ups(tmp_path):
    path = tmp_path / "set.jsonl"
    rows = [{"id": "a", "lang": "zh", "q": "闭源模式有什么优点？", "gold": ["完全控制"], "points": [["完全控制"]]},
            {"id": "b", "lang": "zh", "q": "那缺点呢？", "gold": ["缺点"], "follows": "a"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    first, second = load_items(path)
    assert first.points == (("完全控制",),) and second.follows == "a" and second.points == ()


def test_the_report_counts_points_language_and_length(kb):
    items = [EvalItem(id="zh", question="闭源模式有哪些优点？", lang="zh", gold=("闭源",), unanswerable=False,
                      points=(("数据隐私",), ("a phrase no document contains",))),
             EvalItem(id="en", question="What are the advantages of a closed-source model?", lang="en",
                      gold=("闭源",), unanswerable=False)]
    report = evaluate(kb, items)
    assert report.keypoint_recalls == [0.5] and report.points_covered == 1 and report.points_total == 2
    assert report.incomplete == {"zh": [2]}
    assert report.english_answered == 1 and len(report.answer_chars) == 2 and min(report.answer_chars) > 0
    assert report.to_dict()["keypoint_recall"] == 0.5


def test_a_follow_up_is_searched_with_the_question_it_follows(kb):
    """"那缺点呢？" alone names nothing; after a question on closed source it finds closed source's drawbacks."""
    alone = EvalItem(id="b", question="那缺点呢？", lang="zh", gold=("闭源模式的缺点",), unanswerable=False)
    opener = EvalItem(id="a", question="闭源模式有哪些优点？", lang="zh", gold=("闭源",), unanswerable=False)
    follow_up = EvalItem(id="b", question="那缺点呢？", lang="zh", gold=("闭源",), unanswerable=False, follows="a")
    in_thread = evaluate(kb, [opener, follow_up], with_answers=False)
    assert in_thread.hits == 2
    assert evaluate(kb, [alone], with_answers=False).answerable == 1
