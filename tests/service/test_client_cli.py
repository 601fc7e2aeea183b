"""The Python client and the CLI against a real server, and ``paretonas run`` in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from service.interfaces.client import Client, ClientError
from tests.conftest import table_spec


def cli(*args: str, url: str | None = None, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    if url:
        full_env["PARETONAS_URL"] = url
    return subprocess.run([sys.executable, "-m", "service.interfaces.cli",
                           *args], capture_output=True,
                          text=True, env=full_env, timeout=120)


def test_client_round_trip(server):
    with Client(server) as c:
        study = c.submit(table_spec(budget={"trials": 15}))
        done = c.wait(study["id"], progress=False, poll_s=0.05, timeout_s=60)
        assert done["status"] == "completed"
        assert [t["number"] for t in c.trials(study["id"], page_size=4)] == list(range(15))
        front = c.pareto(study["id"])
        assert front and all(t["on_front"] for t in front)
        frame = c.pareto(study["id"], as_frame=True)
        assert list(frame["number"]) == [t["number"] for t in front]
        assert {"depth", "op", "width", "acc", "latency_ms"} <= set(frame.columns)
        assert c.list(status="completed")["count"] == 1
        with pytest.raises(ClientError, match="search_space.name: unknown search space"):
            c.submit(table_spec(search_space={"name": "nope"}))


def test_cli_submit_wait_status_pareto_cancel(server, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(table_spec(budget={"trials": 10})))
    r = cli("submit", str(spec), "--wait", url=server)
    assert r.returncode == 0, r.stderr
    assert "submitted study 1" in r.stdout and "viewer: " in r.stdout
    r = cli("status", url=server)
    assert "completed" in r.stdout
    r = cli("pareto", "1", "--csv", url=server)
    assert r.stdout.startswith("number,state,on_front")
    r = cli("cancel", "1", url=server)
    assert r.returncode == 0
    r = cli("status", "99", url=server)
    assert r.returncode == 2 and "study 99 not found" in r.stderr


def test_cli_reports_bad_input_without_a_traceback(tmp_path, data_dir):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(table_spec(budget={"trials": -3})))
    r = cli("run", str(bad))
    assert r.returncode == 2 and "budget.trials" in r.stderr and "Traceback" not in r.stderr
    r = cli("run", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "cannot read" in r.stderr
    r = cli("status", url="http://127.0.0.1:9")
    assert r.returncode == 2 and "cannot reach the server" in r.stderr
    wrong_space = tmp_path / "space.json"
    wrong_space.write_text(json.dumps(table_spec(search_space={"name": "nope"})))
    r = cli("run", str(wrong_space))
    assert r.returncode == 2 and "unknown search space 'nope'" in r.stderr


def test_run_in_process_writes_the_result_document(tmp_path, data_dir):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(table_spec(budget={"trials": 20})))
    out = tmp_path / "result.json"
    r = cli("run", str(spec), "--output", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert set(result) == {"study", "trials", "pareto", "hypervolume"}
    assert [t["number"] for t in result["trials"]] == list(range(20))
    assert result["pareto"] and result["hypervolume"] > 0
    assert set(result["trials"][0]) >= {"number", "arch", "values"}


def test_importing_the_client_does_not_import_torch():
    code = ("import sys, service.interfaces.client; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
