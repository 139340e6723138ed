"""Block Kit of /strategy-check: what each message offers, and that Slack would accept it.

Pure rendering (bot/blocks/decision.py), checked with the harness's copy of Slack's own limits.
"""
from __future__ import annotations

import dataclasses
import json

import pytest

from bot.blocks import decision as ui
from decision import evaluate, load_decision_model
from decision.dialogue_store import Dialogue
from decision.report import Reason, ReportCitation, StrategyReport
from slack_harness import message_problem
from test_decision_engine import MIDDLE

THREAD = "1700000000.000100"


@pytest.fixture(scope="module")
def model():
    return load_decision_model()


def elements(blocks):
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def accepted(text, blocks) -> bool:
    return message_problem({"channel": "C1", "text": text, "blocks": blocks}) is None


def test_every_question_message_carries_its_thread_and_question_in_each_value(model):
    dialogue = Dialogue("C1", THREAD, "U1")
    for question in model.questions:
        text, blocks = ui.question_message(model, dialogue, question)
        assert accepted(text, blocks)
        for element in elements(blocks):
            raw = [o["value"] for o in element["options"]] if element["type"] == "static_select" else [element["value"]]
            for value in map(ui.ActionValue.decode, raw):
                assert value.thread_ts == THREAD and value.question == question.key
            assert element["action_id"].startswith("strategy_check:")


def test_few_options_are_buttons_many_are_a_select(model):
    dialogue = Dialogue("C1", THREAD, "U1")
    domain = model.question("application_domain")
    _, blocks = ui.question_message(model, dialogue, domain)
    (select,) = [e for e in elements(blocks) if e["action_id"].startswith(ui.ANSWER)]
    assert select["type"] == "static_select" and len(select["options"]) == len(domain.options) > 5
    _, blocks = ui.question_message(model, dialogue, model.question("data_sensitivity"))
    buttons = [e for e in elements(blocks) if e["action_id"].startswith(ui.ANSWER)]
    assert [b["text"]["text"] for b in buttons] == [o.label for o in model.question("data_sensitivity").options]
    assert len({b["action_id"] for b in buttons}) == len(buttons), "action ids are unique within a message"


def test_a_re_asked_question_shows_and_preselects_the_current_answer(model):
    dialogue = Dialogue("C1", THREAD, "U1", answers={"application_domain": "speech"})
    _, blocks = ui.question_message(model, dialogue, model.question("application_domain"))
    (select,) = [e for e in elements(blocks) if e["type"] == "static_select"]
    assert ui.ActionValue.decode(select["initial_option"]["value"]).value == "speech"
    assert any("Current answer: *Speech recognition*" in str(b) for b in blocks)


def test_progress_and_navigation(model):
    dialogue = Dialogue("C1", THREAD, "U1")
    first_text, first = ui.question_message(model, dialogue, model.questions[0])
    third_text, third = ui.question_message(model, dialogue, model.questions[2])
    assert first_text.startswith("Question 1/9") and third_text.startswith("Question 3/9")
    assert ui.BACK not in {e["action_id"] for e in elements(first)}
    assert {ui.BACK, ui.RESTART, ui.CANCEL} <= {e["action_id"] for e in elements(third)}


def test_answered_and_closed_messages_have_nothing_left_to_click(model):
    question = model.question("data_sensitivity")
    text, blocks = ui.answered_message(model, question, "regulated")
    assert elements(blocks) == [] and "Regulated (medical, financial)" in text
    assert elements(ui.went_back_message(model, question)[1]) == []


def test_user_text_cannot_ping_or_break_the_markup():
    text, blocks = ui.started_message("U1", "<!channel> @here ship it & <b>")
    shown = blocks[1]["elements"][0]["text"]
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown and "&amp;" in shown
    assert "@here" not in shown


def test_a_result_with_very_long_texts_still_fits_slacks_limits(model):
    decision = evaluate(model, MIDDLE)
    long = "很长的句子。" * 2000  # 12,000 characters per text: ten times anything real
    report = StrategyReport(
        recommendation="hybrid", label="Hybrid", headline="Recommendation: Hybrid",
        scores=tuple((k, model.recommendation(k).label, decision.scores[k]) for k in ("hybrid", "closed", "open")),
        reasons=tuple(Reason(f.question_key, "Topic", f.label, long, f.contribution, 1, long + " [1]")
                      for f in decision.top_factors),
        citations=(ReportCitation(1, "doc", "Title", "Section", long, "c1", 0.9),),
        flip=long, flip_recommendation="closed", next_steps=(long,) * 4,
        answers=(("q", "a"),), context=long)
    text, blocks = ui.result_message(report, Dialogue("C1", THREAD, "U1"))
    assert accepted(text, blocks)
    assert blocks[0]["text"]["text"] == "Recommendation: Hybrid"
    assert {e["action_id"] for e in elements(blocks)} == {ui.CANVAS, ui.EXPORT, ui.BACK, ui.RESTART}
    assert text.startswith("Recommendation: Hybrid\n")
    export = ui.export_text(report)
    assert message_problem({"channel": "C1", "text": export}) is None and export.endswith("```")


def test_a_value_we_did_not_write_is_ignored():
    assert ui.ActionValue.decode("not json") is None
    assert ui.ActionValue.decode('{"x": 1}') is None
    assert ui.ActionValue.decode(None) is None
    value = ui.ActionValue(THREAD, "data_sensitivity", "public")
    assert ui.ActionValue.decode(value.encode()) == value


HOSTILE = "<!channel> <@U0BOSS001> <https://evil.example|click here> @here & co"
RAW_MARKUP = ("<!channel>", "<@U0BOSS001>", "<https://evil.example", "@here")


def test_every_text_slack_renders_of_a_result_is_escaped_fallback_and_export_included(model):
    decision = evaluate(model, MIDDLE)
    report = StrategyReport(
        recommendation="hybrid", label="Hybrid", headline="Recommendation: Hybrid",
        scores=tuple((k, model.recommendation(k).label, decision.scores[k]) for k in ("hybrid", "closed", "open")),
        reasons=tuple(Reason(f.question_key, "Topic", f.label, f"Because {HOSTILE} [1]", f.contribution, 1,
                             HOSTILE) for f in decision.top_factors),
        citations=(ReportCitation(1, "doc", f"Title {HOSTILE}", "Section", f"Quote {HOSTILE}", "c1", 0.9),),
        flip=HOSTILE, flip_recommendation="closed", next_steps=(HOSTILE,), answers=(("q", HOSTILE),),
        context=HOSTILE)
    text, blocks = ui.result_message(report, Dialogue("C1", THREAD, "U1"))
    export = ui.export_text(report)
    for shown in (text, export, json.dumps(blocks, ensure_ascii=False)):
        assert not any(markup in shown for markup in RAW_MARKUP), shown[:500]
    assert "&lt;!channel&gt;" in text and "&lt;!channel&gt;" in export and "&amp; co" in export
    assert export.splitlines()[1] == "```" and export.endswith("```")


def test_question_fallback_texts_are_escaped_too(model):
    question = model.questions[0]
    hostile = dataclasses.replace(question, text=f"Is {HOSTILE}?")
    text, _ = ui.question_message(model, Dialogue("C1", THREAD, "U1"), hostile)
    answered, _ = ui.answered_message(model, hostile, hostile.options[0].value)
    assert not any(markup in shown for markup in RAW_MARKUP for shown in (text, answered))


def test_the_result_shows_scores_as_a_table_the_flip_as_a_callout_and_next_steps_as_uncited_suggestions(model):
    decision = evaluate(model, MIDDLE)
    scores = tuple((k, model.recommendation(k).label, decision.scores[k]) for k in ("hybrid", "closed", "open"))
    report = StrategyReport(
        recommendation="hybrid", label="Hybrid", headline="Recommendation: Hybrid", scores=scores,
        reasons=(), citations=(), flip="If your data were regulated, closed source would win.",
        flip_recommendation="closed", next_steps=("Pick a licence [2]", "Plan the release"), answers=())
    text, blocks = ui.result_message(report, Dialogue("C1", THREAD, "U1"))
    assert accepted(text, blocks)
    table = next(b for b in blocks if b["type"] == "table")
    rows = [[cell["text"] for cell in row] for row in table["rows"]]
    assert rows[0][:2] == ["Option", "Score"]
    assert [row[:2] for row in rows[1:]] == [[label, f"{score:g}"] for _, label, score in scores]
    assert rows[1][2] == "(recommended)" and rows[2][2] == rows[3][2] == ""
    callout = next(b["text"]["text"] for b in blocks if b["type"] == "section" and "would change" in b["text"]["text"])
    assert callout == ":warning: *What would change the answer*\n>If your data were regulated, closed source would win."
    steps = next(b["text"]["text"] for b in blocks if b["type"] == "section" and "Next steps" in b["text"]["text"])
    assert "suggestions, not from the documents" in steps and "[2]" not in steps and "• Pick a licence" in steps
    markdown = report.to_markdown()
    assert "- Pick a licence\n" in markdown and "[2]" not in markdown
    assert "_(suggestions, not from the documents)_" in markdown
    no_flip = dataclasses.replace(report, flip=None, flip_recommendation=None)
    assert ":warning:" not in json.dumps(ui.result_message(no_flip, Dialogue("C1", THREAD, "U1"))[1])
