"""Block Kit rendering: pure functions from core results to Slack blocks (no I/O, no Slack client)."""
