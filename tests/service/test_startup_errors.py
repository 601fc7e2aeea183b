"""Startup errors are one line naming the setting and its value, exit status 2, no traceback
(issue 22: an unopenable database URL ended in a 114-line traceback)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service.persistence.db import DatabaseUnavailable, open_database


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARETONAS_")}
    return subprocess.run([sys.executable, "-m", "service.interfaces.cli",
                           *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paretonas: error: "), r.stderr
    return lines[0]


@pytest.mark.parametrize(("url", "shown", "reason"), [
    ("postgresql+psycopg://someone:s3cret@127.0.0.1:1/nope",
     "postgresql+psycopg://someone:***@127.0.0.1:1/nope", "Connection refused"),
    ("sqlite:////nonexistent-dir/x.db", "sqlite:////nonexistent-dir/x.db", "unable to open"),
    ("nonsense://x", "nonsense://x", "unknown kind of database"),
    ("garbage", "garbage", "not a database URL"),
])
def test_unopenable_database_url_is_one_line(url, shown, reason):
    with pytest.raises(DatabaseUnavailable) as err:
        open_database(url)
    message = str(err.value)
    assert f"PARETONAS_DATABASE_URL={shown!r}" in message and reason in message
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize("command", [["serve", "--workers", "0", "--port", "1"], ["worker"]])
def test_cli_startup_with_a_bad_database_url(command):
    line = _one_line_error(_run(command, PARETONAS_DATABASE_URL="sqlite:////nonexistent-dir/x.db"))
    assert "PARETONAS_DATABASE_URL='sqlite:////nonexistent-dir/x.db'" in line


def test_cli_startup_with_a_bad_setting(tmp_path):
    line = _one_line_error(_run(["worker"], PARETONAS_LEASE_SECONDS="soon",
                                PARETONAS_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}"))
    assert "PARETONAS_LEASE_SECONDS='soon'" in line and "number" in line
