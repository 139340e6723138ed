"""What the Slack front end remembers: deliveries seen, threads answered, feedback.

Every store queries the one state database (strategy_bot/database.py: a SQLite file under
DATA_DIR, or PostgreSQL shared by replicas) through SQLAlchemy Core, on the tables of
strategy_bot/schema.py; many Slack worker threads read and write at once, and a restart of the
bot, or another replica, finds everything again.
"""
