"""Warnings, lifecycle and export from the command line and the Python client, against a real
server with a worker (``tests.service.live``)."""

from __future__ import annotations

import json

import pytest

from service.interfaces.client import Client, ClientError, StudyWarning
from tests.conftest import table_spec
from tests.service.test_client_cli import cli


def test_client_warns_and_manages_a_study(server):
    with Client(server) as c:
        infeasible = table_spec(constraints=[{"metric": "latency_ms", "max": 1.5}],
                                budget={"trials": 5})
        with pytest.warns(StudyWarning, match="constraints.0: no row of the table meets"):
            study = c.submit(infeasible)
        with pytest.warns(StudyWarning, match="no feasible trial: none of 5 trials"):
            c.wait(study["id"], progress=False, poll_s=0.05, timeout_s=60)
        assert c.submit(table_spec(), idempotency_key="k1")["id"] == \
            c.submit(table_spec(), idempotency_key="k1")["id"]
        renamed = c.update(study["id"], name="too tight", tags=["gnn"], notes="see params")
        assert (renamed["name"], renamed["tags"], renamed["notes"]) == \
            ("too tight", ["gnn"], "see params")
        resumed = c.resume(study["id"], trials=7)
        assert resumed["status"] == "queued" and resumed["n_trials"] == 7
        with pytest.warns(StudyWarning):
            done = c.wait(study["id"], progress=False, poll_s=0.05, timeout_s=60)
        assert done["n_complete"] + done["n_failed"] == 7
        c.delete(study["id"])
        with pytest.raises(ClientError, match="not found"):
            c.get(study["id"])


def test_cli_lifecycle_and_warnings(server, tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(table_spec(constraints=[{"metric": "latency_ms", "max": 1.5}],
                                          budget={"trials": 4})))
    r = cli("submit", str(spec), "--wait", "--idempotency-key", "a", url=server)
    assert r.returncode == 0, r.stderr  # completed, without a feasible trial
    assert "warning: constraints.0: no row of the table meets latency_ms <= 1.5" in r.stderr
    assert "warning: no feasible trial: none of 4 trials is feasible" in r.stderr
    assert "Traceback" not in r.stderr and "StudyWarning" not in r.stderr
    r = cli("pareto", "1", url=server)
    assert "no Pareto-optimal trial" in r.stdout
    assert "constraints.0 (latency_ms <= 1.5)" in r.stderr
    r = cli("update", "1", "--name", "renamed", "--tags", "a,b", url=server)
    assert r.returncode == 0 and "renamed  tags: a, b" in r.stdout
    r = cli("update", "1", url=server)
    assert r.returncode == 2 and "nothing to change" in r.stderr
    r = cli("resume", "1", "--trials", "3", url=server)
    assert r.returncode == 2 and "budget.trials" in r.stderr
    r = cli("resume", "1", "--trials", "6", url=server)
    assert r.returncode == 0 and "budget 6 trials (4 already run)" in r.stdout
    r = cli("delete", "1", url=server)
    if r.returncode == 2:  # still running its 2 new trials: the server says to cancel first
        assert "cancel it first" in r.stderr
        cli("cancel", "1", url=server)
        with Client(server) as c:
            c.wait(1, progress=False, poll_s=0.05, timeout_s=60)
        r = cli("delete", "1", url=server)
    assert r.returncode == 0 and "study 1 deleted" in r.stdout
    r = cli("status", "1", url=server)
    assert r.returncode == 2 and "study 1 not found" in r.stderr


def test_export_from_cli_and_client(server, tmp_path):
    with Client(server) as c:
        study = c.submit(table_spec(constraints=[{"metric": "acc", "min": 0.6}],
                                    budget={"trials": 9}))
        c.wait(study["id"], progress=False, poll_s=0.05, timeout_s=60)
        frame = c.trials(study["id"], as_frame=True)
        assert list(frame["number"]) == list(range(9))
        assert {"acc", "latency_ms", "source:acc", "state", "stage"} <= set(frame.columns)
        assert c.trials_csv(study["id"]).startswith("number,state,on_front,feasible")
    r = cli("trials", str(study["id"]), "--csv", url=server)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 10
    assert "source:acc" in r.stdout.splitlines()[0]
    r = cli("trials", str(study["id"]), url=server)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == 10 and lines[0].split()[:3] == ["#", "state",
                                                                              "front"]
    # aligned: every row's arch column starts where the header's does
    start = lines[0].index("arch / error")
    assert all(line[start] in "{n" and line[start - 2:start] == "  " for line in lines[1:])
    r = cli("pareto", str(study["id"]), url=server)
    head, *rows = r.stdout.splitlines()
    assert rows and all(row.index("{") == head.index("arch") for row in rows)
