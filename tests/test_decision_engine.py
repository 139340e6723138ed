"""How the decision engine behaves, as executable documentation.

The engine turns questionnaire answers into open / closed / hybrid, explains the result with the
answers that mattered most, and names the smallest change that would flip it.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
import yaml

from decision import (
    DEFAULT_MODEL_PATH,
    AnswerError,
    DecisionModelError,
    evaluate,
    load_decision_model,
    parse_answers,
)
from decision.engine import score, winner_of

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model():
    return load_decision_model()


# A balanced organisation: every answer is the "it depends" middle option.
MIDDLE = {
    "data_sensitivity": "internal",
    "competitive_moat": "partial",
    "maintenance_budget": "split",
    "ml_capability": "moderate",
    "ecosystem_value": "useful",
    "transparency_need": "helpful",
    "customisation": "standard",
    "time_to_market": "steady",
    "application_domain": "other",
}

ALL_CLOSED = {
    "data_sensitivity": "regulated",
    "competitive_moat": "core_moat",
    "maintenance_budget": "fully_funded",
    "ml_capability": "strong",
    "ecosystem_value": "unimportant",
    "transparency_need": "not_needed",
    "customisation": "we_tailor",
    "time_to_market": "controlled",
    "application_domain": "financial_monitoring",
}

ALL_OPEN = {
    "data_sensitivity": "public",
    "competitive_moat": "not_moat",
    "maintenance_budget": "share_with_community",
    "ml_capability": "limited",
    "ecosystem_value": "critical",
    "transparency_need": "required",
    "customisation": "users_modify",
    "time_to_market": "fast",
    "application_domain": "research_nlp",
}


def profile(**overrides: str) -> dict[str, str]:
    """The balanced organisation with a few answers changed."""
    return {**MIDDLE, **overrides}


def all_answer_sets(model):
    """Every complete answer set the questionnaire allows (about 70k; scoring them takes <1s)."""
    for values in itertools.product(*(q.values for q in model.questions)):
        yield dict(zip(model.question_keys, values))


# --------------------------------------------------------------------------- the model file


def test_the_shipped_model_has_six_to_nine_questions_and_three_recommendations(model):
    assert 6 <= len(model.questions) <= 9
    assert set(model.recommendation_keys) == {"open", "closed", "hybrid"}
    assert set(MIDDLE) == set(model.question_keys)
    for rec in model.recommendations:
        assert 3 <= len(rec.next_steps) <= 4, rec.key


def test_every_option_explains_itself_and_can_be_cited(model):
    for question in model.questions:
        assert question.text and question.text_zh
        for option in question.options:
            assert option.rationale.endswith("."), (question.key, option.value)
            assert option.query and option.label and option.label_zh
            assert all(-3 <= w <= 3 for w in option.weights.values())


def _seed_texts() -> str:
    """The knowledge-base articles: the corpus the project ships, else the shared seeds."""
    for folder, pattern in ((REPO / "knowledge" / "corpus", "*.md"), (Path("/work/shared/seeds"), "*.txt")):
        files = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if files:
            return "".join(p.read_text(encoding="utf-8") for p in files)
    pytest.skip("knowledge-base articles not found")


def test_every_query_quotes_the_articles_so_retrieval_finds_the_passage(model):
    corpus = _seed_texts()
    for question in model.questions:
        for option in question.options:
            phrases = [p for p in re.split(r"[\s，、。]+", option.query) if p]
            quoted = [p for p in phrases if p in corpus]
            assert quoted and max(map(len, quoted)) >= 6, (question.key, option.value, option.query)


# --------------------------------------------------------------------------- recommendations


def test_every_recommendation_is_reachable_by_some_answer_set(model):
    reached = {winner_of(model, answers) for answers in all_answer_sets(model)}
    assert reached == {"open", "closed", "hybrid"}


@pytest.mark.parametrize(
    ("name", "answers", "expected"),
    [
        ("all closed-leaning answers", ALL_CLOSED, "closed"),
        ("all open-leaning answers", ALL_OPEN, "open"),
        ("balanced organisation", MIDDLE, "hybrid"),
        ("regulated data + model is the core IP",
         profile(data_sensitivity="regulated", competitive_moat="core_moat"), "closed"),
        ("personal data + model is the core IP",
         profile(data_sensitivity="personal", competitive_moat="core_moat"), "closed"),
        (
            "community critical + transparency required + model not the moat",
            profile(ecosystem_value="critical", transparency_need="required", competitive_moat="not_moat"),
            "open",
        ),
        (
            "small research team with public data",
            profile(data_sensitivity="public", ml_capability="limited",
                    maintenance_budget="share_with_community", application_domain="research_nlp"),
            "open",
        ),
        ("personal data but an ecosystem matters",
         profile(data_sensitivity="personal", ecosystem_value="critical"), "hybrid"),
    ],
)
def test_typical_profiles_get_sensible_recommendations(model, name, answers, expected):
    assert evaluate(model, answers).recommendation == expected, name


def test_a_score_adds_up_the_chosen_options_weights_without_float_noise(tmp_path):
    # A two-question model, small enough to add up by hand.
    data = _model_data()
    data["questions"] = data["questions"][:2]
    data["questions"][0]["options"][0]["weights"] = {"open": 2, "closed": -1, "hybrid": 0.1}
    data["questions"][1]["options"][2]["weights"] = {"open": -3, "closed": 0.5, "hybrid": 0.2}
    small = load_decision_model(_write(tmp_path, data))
    answers = {"data_sensitivity": "public", "competitive_moat": "not_moat"}
    assert evaluate(small, answers).scores == {"open": -1.0, "closed": -0.5, "hybrid": 0.3}


def test_the_decision_carries_the_advice_for_the_winner(model):
    decision = evaluate(model, ALL_CLOSED)
    assert decision.label == "Closed source"
    assert decision.next_steps == model.recommendation("closed").next_steps
    assert decision.margin == decision.scores["closed"] - decision.scores[decision.runner_up] > 0


def test_evaluation_is_deterministic_whatever_the_answer_order(model):
    shuffled = dict(reversed(list(MIDDLE.items())))
    first = evaluate(model, MIDDLE)
    assert evaluate(model, MIDDLE) == first
    assert evaluate(model, shuffled) == first
    assert evaluate(model, shuffled).to_dict() == first.to_dict()


def test_ties_are_broken_by_the_model_tie_break_order(model):
    # Internal data but the model is the core IP: closed and hybrid score exactly the same.
    decision = evaluate(model, profile(competitive_moat="core_moat"))
    assert decision.scores["closed"] == decision.scores["hybrid"]
    assert model.tie_break.index("hybrid") < model.tie_break.index("closed")
    assert decision.recommendation == "hybrid"
    assert decision.runner_up == "closed" and decision.margin == 0


def test_a_different_tie_break_order_changes_only_tied_results(model, tmp_path):
    data = _model_data()
    data["tie_break"] = ["closed", "hybrid", "open"]
    closed_first = load_decision_model(_write(tmp_path, data))
    assert evaluate(closed_first, profile(competitive_moat="core_moat")).recommendation == "closed"
    assert evaluate(closed_first, MIDDLE).recommendation == evaluate(model, MIDDLE).recommendation


# --------------------------------------------------------------------------- explanations


def test_top_factors_are_the_answers_that_most_favoured_the_winner_over_the_runner_up(model):
    decision = evaluate(model, profile(data_sensitivity="regulated", competitive_moat="core_moat"))
    factors = decision.top_factors
    assert 0 < len(factors) <= 3
    assert [f.question_key for f in factors][:2] == ["competitive_moat", "data_sensitivity"]
    contributions = [f.contribution for f in factors]
    assert contributions == sorted(contributions, reverse=True) and all(c > 0 for c in contributions)
    for f in factors:
        weights = model.question(f.question_key).option(f.option_value).weights
        assert f.contribution == weights[decision.recommendation] - weights[decision.runner_up]
        assert f.rationale and f.query and f.label and f.question_text


def test_the_flip_sentence_names_the_question_the_new_answer_and_the_new_recommendation(model):
    decision = evaluate(model, profile(competitive_moat="core_moat"))
    assert decision.flip is not None
    assert decision.flip.sentence == (
        "If your data sensitivity were 'Regulated (medical, financial)', "
        "the recommendation would become Closed source."
    )
    assert decision.flip.sentence_zh.startswith("如果数据敏感程度为“受监管数据（医疗、金融）”")
    (change,) = decision.flip.changes
    assert (change.question_key, change.from_value, change.to_value) == ("data_sensitivity", "internal", "regulated")


def _apply(answers: dict[str, str], flip) -> dict[str, str]:
    return {**answers, **{c.question_key: c.to_value for c in flip.changes}}


def _single_change_flips(model, answers: dict[str, str]) -> bool:
    winner = winner_of(model, answers)
    return any(
        winner_of(model, {**answers, key: value}) != winner
        for key in answers
        for value in model.question(key).values
        if value != answers[key]
    )


def test_applying_the_flip_really_changes_the_recommendation_and_it_is_minimal(model):
    sample = list(all_answer_sets(model))[::700] + [MIDDLE, ALL_OPEN, profile(ecosystem_value="critical")]
    seen_sizes = set()
    for answers in sample:
        decision = evaluate(model, answers)
        if decision.flip is None:
            continue
        seen_sizes.add(len(decision.flip.changes))
        flipped = evaluate(model, _apply(answers, decision.flip))
        assert flipped.recommendation == decision.flip.recommendation != decision.recommendation
        if len(decision.flip.changes) == 2:
            assert not _single_change_flips(model, answers), answers
    assert seen_sizes == {1, 2}, "the sample should exercise both single and paired flips"


def test_a_two_change_flip_is_reported_only_when_no_single_change_suffices(model):
    answers = profile(ecosystem_value="critical")
    decision = evaluate(model, answers)
    assert decision.recommendation == "hybrid"
    assert len(decision.flip.changes) == 2
    assert " and your " in decision.flip.sentence
    assert not _single_change_flips(model, answers)


def test_no_flip_is_reported_when_two_changes_cannot_move_a_landslide(model):
    decision = evaluate(model, ALL_CLOSED)
    assert decision.recommendation == "closed"
    assert decision.flip is None


# --------------------------------------------------------------------------- answers in, errors out


def test_unknown_question_is_rejected_with_the_valid_keys(model):
    with pytest.raises(ValueError, match=r"unknown question 'budget'.*data_sensitivity"):
        evaluate(model, {**MIDDLE, "budget": "high"})


def test_unknown_option_is_rejected_with_the_valid_values(model):
    with pytest.raises(ValueError, match=r"question 'data_sensitivity' has no option 'secret'.*regulated"):
        evaluate(model, profile(data_sensitivity="secret"))


def test_missing_answers_are_rejected_unless_partial_scoring_is_asked_for(model):
    answers = {"data_sensitivity": "regulated", "competitive_moat": "core_moat"}
    with pytest.raises(ValueError, match=r"missing answers for: maintenance_budget, ml_capability"):
        evaluate(model, answers)
    partial = evaluate(model, answers, require_complete=False)
    assert partial.partial and "application_domain" in partial.missing
    assert partial.recommendation == "closed"
    assert partial.scores == score(model, answers)


def test_no_answers_at_all_is_a_pure_tie_won_by_the_first_tie_break(model):
    decision = evaluate(model, {}, require_complete=False)
    assert set(decision.scores.values()) == {0}
    assert decision.recommendation == model.tie_break[0]
    assert decision.top_factors == () and decision.flip is None


def test_parse_answers_reads_the_cli_syntax():
    assert parse_answers("data_sensitivity=regulated, competitive_moat = core_moat,") == {
        "data_sensitivity": "regulated",
        "competitive_moat": "core_moat",
    }
    assert parse_answers("") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data_sensitivity", r"answer #1 'data_sensitivity' is not in key=value form"),
        ("a=b,=c", r"answer #2 '=c' needs both a question key and a value"),
        ("a=", r"needs both a question key and a value"),
        ("a=b,a=c", r"question 'a' is answered twice"),
    ],
)
def test_parse_answers_errors_say_which_item_is_wrong(text, message):
    with pytest.raises(AnswerError, match=message):
        parse_answers(text)


def test_parse_answers_with_a_model_checks_keys_and_values(model):
    assert parse_answers("data_sensitivity=public", model) == {"data_sensitivity": "public"}
    with pytest.raises(ValueError, match=r"unknown question 'colour'"):
        parse_answers("colour=blue", model)
    with pytest.raises(ValueError, match=r"has no option 'top_secret'"):
        parse_answers("data_sensitivity=top_secret", model)


# --------------------------------------------------------------------------- malformed model files


def _model_data() -> dict:
    return yaml.safe_load(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "decision_model.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _option(data: dict, question: str, value: str) -> dict:
    q = next(q for q in data["questions"] if q["key"] == question)
    return next(o for o in q["options"] if o["value"] == value)


def _question(data: dict, key: str) -> dict:
    return next(q for q in data["questions"] if q["key"] == key)


def _drop_hybrid_weight(d):
    del _option(d, "data_sensitivity", "regulated")["weights"]["hybrid"]


def _unknown_recommendation(d):
    _option(d, "competitive_moat", "core_moat")["weights"]["proprietary"] = 1


def _text_weight(d):
    _option(d, "customisation", "standard")["weights"]["open"] = "high"


def _out_of_range_weight(d):
    _option(d, "customisation", "standard")["weights"]["closed"] = 7


def _duplicate_question(d):
    d["questions"].append(dict(_question(d, "ml_capability")))


def _duplicate_option(d):
    q = _question(d, "time_to_market")
    q["options"].append(dict(q["options"][0]))


def _empty_options(d):
    _question(d, "customisation")["options"] = []


def _missing_rationale(d):
    del _option(d, "ecosystem_value", "critical")["rationale"]


def _missing_question_text(d):
    del _question(d, "transparency_need")["text_zh"]


def _bad_tie_break(d):
    d["tie_break"] = ["hybrid", "closed"]


def _missing_next_steps(d):
    del d["options"]["open"]["next_steps"]


def _not_snake_case(d):
    _option(d, "time_to_market", "fast")["value"] = "Very Fast"


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (_drop_hybrid_weight, "question 'data_sensitivity' option 'regulated': weights missing 'hybrid'"),
        (_unknown_recommendation,
         "question 'competitive_moat' option 'core_moat': weights has unknown recommendation 'proprietary'"),
        (_text_weight, "question 'customisation' option 'standard': weight 'open' must be a number, got 'high'"),
        (_out_of_range_weight, "question 'customisation' option 'standard': weight 'closed' = 7 is outside -3..3"),
        (_duplicate_question, "duplicate question key 'ml_capability'"),
        (_duplicate_option, "question 'time_to_market': duplicate option value 'fast'"),
        (_empty_options, "question 'customisation': options must be a non-empty list"),
        (_missing_rationale, "question 'ecosystem_value' option 'critical': missing key 'rationale'"),
        (_missing_question_text, "question 'transparency_need': missing key 'text_zh'"),
        (_bad_tie_break, "tie_break must list each recommendation exactly once"),
        (_missing_next_steps, "recommendation 'open': missing key 'next_steps'"),
        (_not_snake_case, "'Very Fast' is not a snake_case identifier"),
    ],
)
def test_a_malformed_model_is_rejected_naming_the_bad_entry(tmp_path, break_it, message):
    data = _model_data()
    break_it(data)
    path = _write(tmp_path, data)
    with pytest.raises(DecisionModelError) as error:
        load_decision_model(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_invalid_yaml_is_rejected(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\nquestions: [unclosed\n", encoding="utf-8")
    with pytest.raises(DecisionModelError, match="invalid YAML"):
        load_decision_model(path)


def test_a_duplicated_yaml_key_is_rejected_instead_of_silently_overwritten(tmp_path):
    text = DEFAULT_MODEL_PATH.read_text(encoding="utf-8").replace(
        "{open: -3, closed: 3, hybrid: 0}", "{open: -3, closed: 3, hybrid: 0, open: 3}", 1
    )
    path = tmp_path / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DecisionModelError, match=r"duplicate key 'open' at line \d+"):
        load_decision_model(path)


def test_a_missing_file_is_reported_with_its_path(tmp_path):
    with pytest.raises(DecisionModelError, match="decision model file not found: .*nope.yaml"):
        load_decision_model(tmp_path / "nope.yaml")


def test_a_file_that_is_not_a_mapping_is_rejected(tmp_path):
    path = _write(tmp_path, ["just", "a", "list"])
    with pytest.raises(DecisionModelError, match="decision model: expected a mapping, got list"):
        load_decision_model(path)
