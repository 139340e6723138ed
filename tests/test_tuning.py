"""The tuned numbers: one file (prompts/ranking.yaml), checked at start-up, read by the code, sweepable.

Every weight and threshold of ranking, declining and answer selection lives in the file with
the figure behind it; the code reads them from the `Tuning` it was given, so `strategy-bot eval
--set NAME=VALUE` (or a TUNING_FILE) changes the result without editing code, and a malformed
file stops start-up with a message naming the entry.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bot.cli import cli
from retrieval.service import KnowledgeBase
from strategy_bot.settings import Settings
from strategy_bot.tuning import DEFAULT_TUNING_FILE, Tuning, TuningError

CHINESE_QUESTION = "闭源模式最看重的是什么？"


def shipped() -> dict:
    return yaml.safe_load(DEFAULT_TUNING_FILE.read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "ranking.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_every_number_has_a_value_and_the_figure_behind_it():
    tuning = Tuning.load()
    assert set(tuning.why) == {f"{tuning.section_of(name)}.{name}" for name in tuning.names()}
    assert tuning.search.lexical_weight == 0.5 and tuning.decline.cross_lingual_margin == -0.03


@pytest.mark.parametrize("break_it, message", [
    (lambda d: d["search"]["lexical_weight"].update(value="lots"), "search.lexical_weight must be a number"),
    (lambda d: d["search"]["rrf_k"].update(value=60.5), "search.rrf_k must be a whole number"),
    (lambda d: d["answer"]["sentence_slack"].pop("why"), "answer.sentence_slack has no `why`"),
    (lambda d: d["decline"].pop("unknown_name_margin"), "decline.unknown_name_margin is missing"),
    (lambda d: d["quotes"].update(reuse_slak={"value": 0.1, "why": "typo"}), "unknown entry quotes.reuse_slak"),
    (lambda d: d["search"]["max_synonyms"].update(value=-1), "search.max_synonyms must be between 0 and 50"),
    (lambda d: d["index"]["chunk_overlap"].update(value=900), "index.chunk_overlap (900) must be below"),
    (lambda d: d.pop("answer"), "section 'answer' is missing"),
])
def test_a_malformed_file_stops_start_up_naming_the_entry(tmp_path, break_it, message):
    data = shipped()
    break_it(data)
    with pytest.raises(TuningError, match=message.replace("(", r"\(").replace(")", r"\)")):
        KnowledgeBase(Settings(data_dir=tmp_path, tuning_file=write(tmp_path, data)))


def test_the_decline_margins_come_from_the_file_unless_a_setting_overrides_them(tmp_path):
    data = shipped()
    data["decline"]["same_language_margin"]["value"] = 0.07
    custom = write(tmp_path, data)
    from_file = KnowledgeBase(Settings.from_env({"TUNING_FILE": str(custom)}, dotenv=False))
    assert from_file.decline_policy.same_language_margin == 0.07
    assert from_file.decline_policy.cross_lingual_margin == -0.03
    overridden = KnowledgeBase(Settings.from_env({"TUNING_FILE": str(custom), "ABSTAIN_MARGIN": "0.02"}, dotenv=False))
    assert overridden.decline_policy.same_language_margin == 0.02


def test_the_index_is_cut_with_the_tuned_chunk_sizes(tmp_path):
    data = shipped()
    data["index"]["chunk_size"]["value"] = 300
    store = KnowledgeBase(Settings(data_dir=tmp_path, tuning_file=write(tmp_path, data))).store
    assert (store.chunker.chunk_size, store.tuning.chunk_size) == (300, 300)


def hit_ids(result) -> list[str]:
    return [hit.chunk.chunk_id for hit in result.hits]


def test_search_weighs_bm25_by_the_tuned_lexical_weight(kb, e5):
    """At 0 BM25 has no say and hybrid ranks as dense does; at the shipped 0.5 it does."""
    no_lexical = KnowledgeBase(kb.settings, e5, tuning=kb.tuning.with_values({"lexical_weight": 0}))
    assert hit_ids(no_lexical.search(CHINESE_QUESTION)) == hit_ids(kb.search(CHINESE_QUESTION, mode="dense"))
    assert hit_ids(kb.search(CHINESE_QUESTION)) != hit_ids(kb.search(CHINESE_QUESTION, mode="dense"))


@pytest.fixture
def eval_file(tmp_path) -> Path:
    items = [{"id": "a1", "q": "开源模式如何降低成本？", "gold": ["成本"]},
             {"id": "a2", "q": "What are the advantages of a closed-source model?", "gold": ["闭源"]}]
    path = tmp_path / "two.jsonl"
    path.write_text("\n".join(json.dumps(item, ensure_ascii=False) for item in items), encoding="utf-8")
    return path


def run_eval(monkeypatch, e5, data_dir: Path, *args: str):
    monkeypatch.setattr("bot.cli.knowledge_base",
                        lambda settings, tuning=None: KnowledgeBase(settings, e5, tuning=tuning))
    return CliRunner().invoke(cli, ["eval", *args], env={"DATA_DIR": str(data_dir)})


def test_eval_sweeps_a_number_without_editing_the_file(monkeypatch, e5, built_data_dir, eval_file):
    plain = run_eval(monkeypatch, e5, built_data_dir, str(eval_file), "--json")
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.output)["wrongly_declined"] == []
    strict = run_eval(monkeypatch, e5, built_data_dir, str(eval_file), "--json",
                      "--set", "same_language_margin=1.5", "--set", "decline.cross_lingual_margin=1.5")
    assert strict.exit_code == 0, strict.output
    assert json.loads(strict.output)["wrongly_declined"] == ["a1", "a2"]
    assert "value: 0.0" in DEFAULT_TUNING_FILE.read_text(encoding="utf-8")  # the file is untouched


@pytest.mark.parametrize("change, message", [
    ("lexical_weight", "--set takes NAME=VALUE"),
    ("lexical_wieght=0.4", "unknown tuning value 'lexical_wieght'"),
    ("lexical_weight=much", "search.lexical_weight must be a number"),
    ("chunk_size=400", "chunk_size is used when the index is built"),
])
def test_a_bad_sweep_value_is_refused_with_the_reason(monkeypatch, e5, tmp_path, eval_file, change, message):
    result = run_eval(monkeypatch, e5, tmp_path, str(eval_file), "--set", change)
    assert result.exit_code == 2 and message in result.output, result.output
