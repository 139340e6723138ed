"""What the Slack front end remembers under DATA_DIR: deliveries seen, threads answered, feedback.

Each store is one SQLite file (WAL mode, one connection, one lock): many Slack worker
threads read and write at once, and a restart of the bot finds everything again.
"""
