"""Two real `strategy-bot serve` processes sharing one PostgreSQL, each with its own DATA_DIR.

One builder, every replica current: a re-index requested on A (signed `/strategy-reindex`) is
served by B within seconds, a second request meanwhile on B is told one is running, and a
document an admin shares with A is indexed by a build started on B. Slack is the fake Web API on
loopback; the index is the session's build of the shipped corpus (copied per replica), so a
re-index only embeds what is new. Skips with one line when no PostgreSQL answers.
"""
from __future__ import annotations

import json
import shutil
import time

import pytest

from replicas import (
    ADMIN,
    build_lock_held,
    health,
    note_text,
    notes,
    request_reindex,
    two_replicas,
    wait_note,
    wait_until,
)
from retrieval.build_registry import BuildRegistry
from slack_harness import DM_CHANNEL_ID, event_payload, message_event
from strategy_bot import migrate
from strategy_bot.database import open_engine

NEW_DOCUMENTS = 24  # enough embedding for A's build to take a few seconds: B's request lands during it
SERVED_WITHIN_S = 10.0
ZEBRA = ("# Zebra licensing memo\n\n## The zebra clause\n\nThe zebra clause lets licensed partners fine-tune the "
         "model weights for internal use only.\n")
OKAPI = ("# Okapi hosting terms\n\nOkapi partners may host the model weights in their own data centres for "
         "seven years.\n")


@pytest.fixture(scope="module")
def database(postgres_url):
    engine = open_engine(postgres_url)
    migrate.upgrade(engine)  # what the one-shot `strategy-bot db upgrade` does before the replicas start
    yield postgres_url, engine
    engine.dispose()


@pytest.fixture(scope="module")
def bots(tmp_path_factory, built_data_dir, database, slack):
    root = tmp_path_factory.mktemp("replicas")
    dirs = (root / "a", root / "b")
    for data in dirs:
        shutil.copytree(built_data_dir, data, symlinks=True)
    with two_replicas(dirs, slack, database[0]) as (a, b):
        yield a, b, dirs


def ask_in_dm(bot, slack, question: str) -> str:
    """A question in the bot's DM to this replica; the answer's blocks (with its sources) as JSON text."""
    event = message_event(question, channel=DM_CHANNEL_ID, channel_type="im")
    sent = time.perf_counter()
    assert bot.send_event(event_payload(event)).status == 200
    post = slack.wait_for("chat.postMessage", timeout=60,
                          where=lambda c: c.body.get("channel") == DM_CHANNEL_ID and c.at > sent and
                          "*Sources*" in json.dumps(c.body.get("blocks")))[0]
    return json.dumps(post.body["blocks"], ensure_ascii=False)


def test_a_re_index_on_a_is_served_by_b_within_seconds_and_b_is_told_one_is_running(bots, slack, database):
    a, b, (data_a, _) = bots
    engine = database[1]
    uploads_a = data_a / "knowledge"  # A's own upload folder: these documents exist on A's disk only
    uploads_a.mkdir(exist_ok=True)
    (uploads_a / "zebra-licensing.md").write_text(ZEBRA, encoding="utf-8")
    for i in range(NEW_DOCUMENTS):
        (uploads_a / f"falcon-programme-{i:02d}.md").write_text(
            f"# Falcon programme {i}\n\nThe falcon programme number {i} licenses the model weights to partner "
            f"{i} for {i + 2} years. Partner {i} may fine-tune but not redistribute the weights.\n", encoding="utf-8")
    before = health(b)["build"]
    assert health(a)["build"] == before and health(b)["build_current"] is True

    on_a = request_reindex(a, slack)
    wait_until(lambda: build_lock_held(engine), 60, what="A's build taking the lock")
    on_b = request_reindex(b, slack)
    wait_note(slack, on_b, "already running", timeout=60)
    done = wait_note(slack, on_a, "re-indexed", timeout=180)
    assert "*Added* 25" in note_text(done), note_text(done)
    assert not any("re-indexed" in n for n in notes(slack, on_b))

    published = BuildRegistry(engine).current()
    assert published != before and health(a)["build"] == published
    served = wait_until(lambda: health(b)["build"] == published, SERVED_WITHIN_S, what="B serving A's build")
    assert served - done.at < SERVED_WITHIN_S
    assert health(b)["build_current"] is True
    assert "Zebra licensing memo" in ask_in_dm(b, slack, "What does the zebra clause let partners do?")
    assert not (data_a.parent / "b" / "knowledge" / "zebra-licensing.md").exists()  # B had it from the build


def test_a_document_shared_with_a_is_indexed_by_a_build_started_on_b(bots, slack, database):
    a, b, (_, data_b) = bots
    engine = database[1]
    info = slack.add_file("Okapi Hosting.md", OKAPI.encode(), user=ADMIN)
    share = message_event("", channel=DM_CHANNEL_ID, channel_type="im", user=ADMIN, subtype="file_share",
                          files=[{"id": info["id"], "name": info["name"], "mode": "hosted"}])
    with BuildRegistry(engine).build_lock():  # a build running elsewhere: A stores the file, cannot index it now
        assert a.send_event(event_payload(share)).status == 200
        reply = slack.wait_for("chat.postMessage", timeout=60,
                               where=lambda c: "Okapi-Hosting.md" in note_text(c) and "running" in note_text(c))
    assert "re-index is already running" in note_text(reply[-1]), note_text(reply[-1])
    assert not (data_b / "knowledge" / "Okapi-Hosting.md").exists()

    on_b = request_reindex(b, slack)
    summary = note_text(wait_note(slack, on_b, "re-indexed", timeout=180))
    assert "*Added* 1" in summary and "okapi-hosting" in summary.lower(), summary
    assert (data_b / "knowledge" / "Okapi-Hosting.md").read_text(encoding="utf-8") == OKAPI
    assert "Okapi hosting terms" in ask_in_dm(b, slack, "What are the okapi hosting terms?")
    published = BuildRegistry(engine).current()
    wait_until(lambda: health(a)["build"] == published, SERVED_WITHIN_S, what="A serving B's build")
    assert "Okapi hosting terms" in ask_in_dm(a, slack, "What are the okapi hosting terms?")
