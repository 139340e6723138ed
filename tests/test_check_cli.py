"""`strategy-bot check`: the strategy check in the terminal, interactive or scripted.

Runs the real click command against a copy of the built index. The knowledge base is given the
session's already-loaded e5 model (via bot.cli_base.knowledge_base) instead of loading it again per
invocation; one test runs the installed entry point as a subprocess.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bot.cli import cli
from decision import DEFAULT_MODEL_PATH, load_decision_model
from test_decision_engine import ALL_CLOSED, MIDDLE

REPO = Path(__file__).resolve().parent.parent


def as_option(answers: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in answers.items())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, built_data_dir) -> Path:
    import shutil

    target = tmp_path_factory.mktemp("check_cli") / "data"
    shutil.copytree(built_data_dir, target, symlinks=True)
    return target


@pytest.fixture
def run(monkeypatch, data_dir, e5):
    from retrieval.service import KnowledgeBase

    monkeypatch.setattr("bot.cli_base.knowledge_base", lambda settings: KnowledgeBase(settings, e5))

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        runner = CliRunner()
        return runner.invoke(cli, ["check", *args], input=input,
                             env={"DATA_DIR": str(data_dir), **(env or {})}, catch_exceptions=False)

    return invoke


def test_scripted_answers_print_the_cited_result(run):
    result = run("--answers", as_option(MIDDLE), "--context", "a fintech start-up")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Recommendation: Hybrid"
    assert "Context: a fintech start-up" in result.stdout
    assert "## Why" in result.stdout and "## Sources" in result.stdout
    assert any(line.startswith("1. ") and line.endswith("[1]") for line in lines)


def test_json_carries_recommendation_scores_reasons_citations_and_flip(run):
    result = run("--answers", as_option(ALL_CLOSED), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["recommendation"] == "closed" and data["label"] == "Closed source"
    assert data["scores"]["closed"] > data["scores"]["hybrid"] > data["scores"]["open"]
    assert len(data["reasons"]) == 3
    cited = {c["n"]: c for c in data["citations"]}
    for reason in data["reasons"]:
        citation = cited[reason["citation"]]
        assert citation["quote"] and citation["title"].startswith("开源还是闭源")
    assert "flip" in data and data["flip"] is None


def test_interactive_answers_give_the_same_result_as_scripted_ones(run):
    model = load_decision_model()
    choices = [str(q.values.index(MIDDLE[q.key]) + 1) for q in model.questions]
    interactive = run("--json", input="\n".join(choices) + "\n")
    assert interactive.exit_code == 0, interactive.output
    scripted = run("--json", "--answers", as_option(MIDDLE))
    assert json.loads(interactive.stdout) == json.loads(scripted.stdout)
    assert "(1/9) How sensitive is the data" in interactive.stderr
    assert "  4. Regulated (medical, financial)" in interactive.stderr
    assert f"--answers {as_option(MIDDLE)}" in interactive.stderr


def test_an_out_of_range_choice_is_asked_again(run):
    model = load_decision_model()
    choices = ["7", "0", "x"] + [str(q.values.index(ALL_CLOSED[q.key]) + 1) for q in model.questions]
    result = run(input="\n".join(choices) + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "Recommendation: Closed source"
    assert result.stderr.count("(1/9)") == 1
    assert result.stderr.count("Your choice") == len(model.questions) + 3


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ("data_sensitivity=secret", "question 'data_sensitivity' has no option 'secret'; choose one of: public"),
        ("colour=blue", "unknown question 'colour'"),
        ("data_sensitivity", "answer #1 'data_sensitivity' is not in key=value form"),
        ("data_sensitivity=public,data_sensitivity=internal", "question 'data_sensitivity' is answered twice"),
        ("data_sensitivity=public", "missing answers for: competitive_moat, maintenance_budget"),
    ],
)
def test_bad_answers_exit_2_naming_the_problem(run, answers, message):
    result = run("--answers", answers, "--json")
    assert result.exit_code == 2
    assert message in result.stderr and "strategy-bot check --list" in result.stderr
    assert result.stdout == ""


def test_list_shows_every_key_and_value(run):
    result = run("--list")
    assert result.exit_code == 0
    for question in load_decision_model().questions:
        for value in question.values:
            assert f"{question.key}={value}" in result.stdout


def test_a_malformed_decision_model_is_rejected_naming_the_bad_entry(run, tmp_path):
    data = yaml.safe_load(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))
    del data["questions"][1]["options"][0]["weights"]["hybrid"]
    bad = tmp_path / "decision_model.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = run("--answers", as_option(MIDDLE), env={"DECISION_MODEL_FILE": str(bad)})
    assert result.exit_code == 1
    assert "question 'competitive_moat' option 'core_moat': weights missing 'hybrid'" in result.stderr
    assert str(bad) in result.stderr


def test_the_installed_command_refuses_bad_answers_with_status_2(data_dir):
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    command = Path(sys.executable).parent / "strategy-bot"
    done = subprocess.run([str(command), "check", "--answers", "budget=huge"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert done.returncode == 2
    assert "unknown question 'budget'" in done.stderr
