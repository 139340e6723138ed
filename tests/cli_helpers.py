"""Running the real `strategy-bot` command in a subprocess, with a controlled environment.

The environment keeps PATH, HOME and the like but drops every variable `Settings` reads, so a
developer's `.env` or shell settings cannot leak into a test; each test passes the ones it means.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from strategy_bot.settings import Settings

REPO = Path(__file__).resolve().parent.parent
CLI_TIMEOUT_S = 300  # a cold start is ~2 s on an idle machine; shared CI cores can be much slower


def strategy_bot_command() -> list[str]:
    """The installed console script, or the module when the package is not installed as a script."""
    script = Path(sys.executable).parent / "strategy-bot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


def cli_env(extra_env: dict[str, str] | None = None, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in {f.name for f in fields(Settings)}}
    env.update({"EMBEDDING_BACKEND": "e5", "PYTHONIOENCODING": "utf-8", **(extra_env or {})})
    env.update({name.upper(): str(value) for name, value in settings.items()})
    return env


def run_cli(*args: str, cwd: Path, stdin: str | None = None, timeout: float = CLI_TIMEOUT_S,
            extra_env: dict[str, str] | None = None, **settings: object) -> subprocess.CompletedProcess:
    """`strategy-bot ARGS...` with the given settings (e.g. data_dir=...), output as text."""
    return subprocess.run([*strategy_bot_command(), *args], cwd=cwd, env=cli_env(extra_env, **settings), input=stdin,
                          capture_output=True, text=True, timeout=timeout, encoding="utf-8")


def run_cli_bytes(*args: str, cwd: Path, stdin: bytes = b"", timeout: float = CLI_TIMEOUT_S,
                  extra_env: dict[str, str] | None = None, **settings: object) -> subprocess.CompletedProcess:
    """`run_cli` with stdin as raw bytes (text that is not UTF-8); stdout and stderr are decoded
    as UTF-8 with U+FFFD for anything else, so a test can still read what the command printed.
    An argument holding lone surrogates (`os.fsdecode(b"\\xff")`) reaches the command as those bytes."""
    done = subprocess.run([*strategy_bot_command(), *args], cwd=cwd, env=cli_env(extra_env, **settings), input=stdin,
                          capture_output=True, timeout=timeout)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("utf-8", "replace"),
                                       done.stderr.decode("utf-8", "replace"))


def start_cli(*args: str, cwd: Path, **settings: object) -> subprocess.Popen:
    """The same, started in the background (for tests that interrupt it)."""
    return subprocess.Popen([*strategy_bot_command(), *args], cwd=cwd, env=cli_env(**settings),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
