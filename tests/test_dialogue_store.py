"""How questionnaire state per Slack thread behaves and survives, as executable documentation.

Transitions live on the immutable Dialogue (answer, back, restart, cancel return a new Dialogue);
DialogueStore only persists them, keyed by (channel_id, thread_ts), in the state database: every
persistence test runs on SQLite and on PostgreSQL (conftest.state_url).
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from decision import load_decision_model
from decision.dialogue_store import ACTIVE, CANCELLED, FINISHED, Dialogue, DialogueConflict, DialogueStore
from strategy_bot.database import open_engine

DAY = 86400.0
T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def model():
    return load_decision_model()


@pytest.fixture
def store(state_engine):
    with DialogueStore(state_engine) as s:
        yield s


@pytest.fixture
def reopen(state_url):
    """A new store on the same database, as a restarted bot (or another replica) opens it."""
    engines = []

    def open_store() -> DialogueStore:
        engines.append(open_engine(state_url))
        return DialogueStore(engines[-1])

    yield open_store
    for engine in engines:
        engine.dispose()


def first_option(model, index: int) -> tuple[str, str]:
    question = model.questions[index]
    return question.key, question.options[0].value


def answer_all(dialogue: Dialogue, model) -> Dialogue:
    for index in range(len(model.questions)):
        dialogue = dialogue.answer(*first_option(model, index), model)
    return dialogue


# --------------------------------------------------------------------------- pure transitions


def test_a_new_dialogue_starts_at_the_first_question(store, model):
    dialogue = store.create("C1", "111.1", "U1", context="We run a hospital chatbot", now=T0)
    assert (dialogue.step, dict(dialogue.answers), dialogue.status) == (0, {}, ACTIVE)
    assert dialogue.created_at == dialogue.updated_at == T0
    assert dialogue.current_question(model) is model.questions[0]


def test_answering_records_the_answer_and_moves_to_the_next_question(model):
    start = Dialogue("C1", "111.1", "U1")
    after = start.answer("data_sensitivity", "regulated", model)
    assert after.answers == {"data_sensitivity": "regulated"} and after.step == 1
    assert start.answers == {} and start.step == 0, "transitions never mutate the original"


def test_answering_every_question_finishes_the_dialogue(model):
    done = answer_all(Dialogue("C1", "111.1", "U1"), model)
    assert done.status == FINISHED and done.step == len(model.questions)
    assert done.current_question(model) is None


def test_re_answering_an_earlier_question_jumps_to_the_next_unanswered_one(model):
    # Slack keeps earlier question messages clickable; changing one must not lose later answers.
    dialogue = Dialogue("C1", "111.1", "U1")
    for index in range(4):
        dialogue = dialogue.answer(*first_option(model, index), model)
    changed = dialogue.answer("data_sensitivity", "personal", model)
    assert changed.answers["data_sensitivity"] == "personal"
    assert changed.step == 4 and len(changed.answers) == 4


def test_an_invalid_answer_is_rejected_without_changing_anything(model):
    dialogue = Dialogue("C1", "111.1", "U1")
    with pytest.raises(ValueError, match="has no option 'secret'"):
        dialogue.answer("data_sensitivity", "secret", model)
    with pytest.raises(ValueError, match="unknown question 'colour'"):
        dialogue.answer("colour", "blue", model)


def test_back_returns_to_the_previous_question_keeping_its_answer(model):
    dialogue = Dialogue("C1", "111.1", "U1").answer("data_sensitivity", "public", model)
    back = dialogue.back()
    assert back.step == 0 and back.answers == {"data_sensitivity": "public"}
    assert back.back().step == 0, "back at the first question stays there"


def test_back_from_a_finished_dialogue_reopens_the_last_question(model):
    reopened = answer_all(Dialogue("C1", "111.1", "U1"), model).back()
    assert reopened.status == ACTIVE and reopened.step == len(model.questions) - 1
    assert reopened.current_question(model) is model.questions[-1]


def test_restart_forgets_answers_and_messages_but_keeps_who_and_why(model):
    dialogue = answer_all(Dialogue("C1", "111.1", "U1", context="fintech"), model)
    dialogue = dialogue.with_message("data_sensitivity", "222.2")
    fresh = dialogue.restart()
    assert (fresh.step, dict(fresh.answers), dict(fresh.message_ts), fresh.status) == (0, {}, {}, ACTIVE)
    assert (fresh.user_id, fresh.context) == ("U1", "fintech")


def test_a_cancelled_dialogue_must_be_restarted_before_answering(model):
    cancelled = Dialogue("C1", "111.1", "U1").cancel()
    assert cancelled.status == CANCELLED
    with pytest.raises(ValueError, match="cancelled"):
        cancelled.answer("data_sensitivity", "public", model)
    assert cancelled.restart().answer("data_sensitivity", "public", model).step == 1


# --------------------------------------------------------------------------- persistence


def test_get_returns_none_for_a_thread_without_a_dialogue(store):
    assert store.get("C1", "nope") is None


def test_state_survives_closing_and_reopening_the_store(reopen, model):
    with reopen() as first:
        dialogue = first.create("C1", "111.1", "U1", context="上下文: 金融")
        dialogue = dialogue.answer("data_sensitivity", "regulated", model).with_message("data_sensitivity", "111.2")
        saved = first.save(dialogue, now=T0 + 60)
    with reopen() as second:  # e.g. after a bot restart
        loaded = second.get("C1", "111.1")
    assert loaded == saved
    assert loaded.answers == {"data_sensitivity": "regulated"}
    assert loaded.message_ts == {"data_sensitivity": "111.2"} and loaded.context == "上下文: 金融"
    assert loaded.updated_at == T0 + 60


def test_dialogues_are_keyed_by_channel_and_thread(store):
    store.create("C1", "1.0", "U1")
    store.create("C2", "1.0", "U2")
    store.create("C1", "2.0", "U3")
    assert store.get("C1", "1.0").user_id == "U1"
    assert store.get("C2", "1.0").user_id == "U2"
    assert store.get("C1", "2.0").user_id == "U3"


def test_creating_again_in_the_same_thread_starts_over(store, model):
    store.save(store.create("C1", "1.0", "U1").answer("data_sensitivity", "public", model))
    again = store.create("C1", "1.0", "U9")
    assert store.get("C1", "1.0") == again and again.answers == {}


def test_delete_removes_the_dialogue(store):
    store.create("C1", "1.0", "U1")
    assert store.delete("C1", "1.0") is True
    assert store.get("C1", "1.0") is None
    assert store.delete("C1", "1.0") is False


def test_the_database_uses_wal_so_readers_do_not_block_the_writer(store, state_engine):
    if state_engine.dialect.name != "sqlite":
        pytest.skip("WAL is SQLite's; PostgreSQL's readers never block writers")
    with state_engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_a_dialogue_expires_seven_days_after_its_last_update(store):
    dialogue = store.save(store.create("C1", "1.0", "U1", now=T0), now=T0 + DAY)
    assert not store.is_expired(dialogue, now=T0 + 8 * DAY - 1)
    assert not store.is_expired(dialogue, now=T0 + 8 * DAY)
    assert store.is_expired(dialogue, now=T0 + 8 * DAY + 1)
    assert store.is_expired(dialogue, now=T0 + 3 * DAY, ttl_days=1)


def test_purge_expired_deletes_only_stale_dialogues(store):
    store.create("C1", "old", "U1", now=T0)
    store.create("C1", "new", "U1", now=T0 + 6 * DAY)
    assert store.purge_expired(now=T0 + 7 * DAY + 1) == 1
    assert store.get("C1", "old") is None and store.get("C1", "new") is not None


def test_two_threads_writing_different_dialogues_at_once_do_not_interfere(store, reopen, model):
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def fill(thread_ts: str, option_index: int) -> None:
        try:
            dialogue = store.create("C1", thread_ts, f"U-{thread_ts}")
            start.wait()
            for _ in range(5):  # many interleaved writes: restart and answer everything again
                dialogue = dialogue.restart()
                for question in model.questions:
                    value = question.options[min(option_index, len(question.options) - 1)].value
                    dialogue = store.save(dialogue.answer(question.key, value, model))
        except BaseException as exc:  # surfaced below; a thread cannot fail the test directly
            errors.append(exc)

    threads = [threading.Thread(target=fill, args=(ts, i)) for i, ts in enumerate(("1.0", "2.0"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors

    with reopen() as reopened:
        for index, ts in enumerate(("1.0", "2.0")):
            dialogue = reopened.get("C1", ts)
            assert dialogue.status == FINISHED and dialogue.user_id == f"U-{ts}"
            assert dialogue.answers == {
                q.key: q.options[min(index, len(q.options) - 1)].value for q in model.questions
            }


# --------------------------------------------------------------------------- optimistic versioning


def test_each_save_advances_the_version_and_a_stale_save_changes_nothing(store, model):
    created = store.create("C1", "1.0", "U1")
    assert created.version == 1
    moved = store.save(created.answer("data_sensitivity", "public", model))
    assert moved.version == 2 and store.get("C1", "1.0") == moved
    with pytest.raises(DialogueConflict, match="changed since version 1"):
        store.save(created.answer("data_sensitivity", "regulated", model))  # read before `moved` was saved
    assert store.get("C1", "1.0") == moved
    assert store.create("C1", "1.0", "U2").version == 3, "starting over replaces whatever was there"


def test_a_dialogue_deleted_meanwhile_is_not_brought_back_by_a_save(store, model):
    dialogue = store.create("C1", "1.0", "U1")
    store.delete("C1", "1.0")
    with pytest.raises(DialogueConflict):
        store.save(dialogue.answer("data_sensitivity", "public", model))
    assert store.get("C1", "1.0") is None
    fresh = store.save(Dialogue("C1", "1.0", "U1"))  # a never-stored dialogue is inserted, once
    assert fresh.version == 1
    with pytest.raises(DialogueConflict):
        store.save(Dialogue("C1", "1.0", "U9"))


def test_two_replicas_saving_the_same_step_at_once_advance_it_exactly_once(reopen, model):
    """Two connections (as two replicas), both read version 1, both save their click: one wins."""
    first, second = reopen(), reopen()
    first.create("C1", "1.0", "U1")
    for _ in range(20):  # many rounds, so the race really happens both ways
        read = [first.get("C1", "1.0"), second.get("C1", "1.0")]
        start = threading.Barrier(2)
        outcome: list[str] = []

        def click(store: DialogueStore, dialogue: Dialogue, value: str,
                  start: threading.Barrier = start, outcome: list[str] = outcome) -> None:
            start.wait()
            try:
                store.save(dialogue.restart().answer("data_sensitivity", value, model))
                outcome.append(value)
            except DialogueConflict:
                outcome.append("conflict")

        threads = [threading.Thread(target=click, args=(s, d, v))
                   for s, d, v in ((first, read[0], "public"), (second, read[1], "regulated"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(outcome, key=lambda o: o == "conflict")[1] == "conflict", outcome
        winner = next(o for o in outcome if o != "conflict")
        stored = first.get("C1", "1.0")
        assert stored.version == read[0].version + 1 and stored.answers == {"data_sensitivity": winner}
