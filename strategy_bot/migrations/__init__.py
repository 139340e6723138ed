"""Alembic's migration scripts for the state schema (strategy_bot/schema.py); run them with
`strategy-bot db upgrade` (strategy_bot/migrate.py configures Alembic in code, no alembic.ini)."""
