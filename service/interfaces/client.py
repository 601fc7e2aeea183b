"""Python client for the ParetoNAS REST API (httpx only: importing it never imports torch).

    from service.interfaces.client import Client
    c = Client("http://127.0.0.1:8000")
    study = c.submit(spec)          # dict or path to a JSON file
    c.wait(study["id"])             # progress bar
    front = c.pareto(study["id"])   # list of dicts, or a DataFrame with as_frame=True
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import httpx

TERMINAL = ("completed", "failed", "cancelled")


class StudyWarning(UserWarning):
    """The server found a problem with a study that does not stop it (``extra.warnings``: a
    constraint nothing meets, an accuracy mode that cannot screen...) or a finished study has
    no feasible trial (``extra.no_feasible``)."""


def outcome_notes(study: dict[str, Any]) -> list[str]:
    """Why a finished study has no feasible trial, if it has none (one line, else none)."""
    no_feasible = (study.get("extra") or {}).get("no_feasible")
    return [f"no feasible trial: {no_feasible['message']}"] if no_feasible else []


def study_notes(study: dict[str, Any]) -> list[str]:
    """The study's warnings and, when it has no feasible trial, why: one line each."""
    extra = study.get("extra") or {}
    lines = [f"{w.get('field', '')}: {w.get('message', '')}" for w in extra.get("warnings", [])]
    return lines + outcome_notes(study)


def _warn(study: dict[str, Any], lines: list[str] | None = None) -> None:
    for line in study_notes(study) if lines is None else lines:
        warnings.warn(f"study {study['id']}: {line}", StudyWarning, stacklevel=3)


def flat_trial(t: dict[str, Any]) -> dict[str, Any]:
    """One trial as one flat row (what ``as_frame=True`` puts in a DataFrame)."""
    info = t.get("info") or {}
    row = {k: t.get(k) for k in ("number", "state", "stage", "on_front", "duration_s", "error")}
    row["accuracy"] = info.get("accuracy")
    row["duplicate_of"] = info.get("duplicate_of")
    row.update(t["arch"])
    row.update(t["values"])
    row.update({f"source:{k}": v for k, v in info.get("sources", {}).items()})
    return row


def _frame(trials: list[dict[str, Any]], flatten) -> Any:
    try:
        import pandas as pd  # optional: the client itself needs httpx only
    except ImportError as exc:
        raise ImportError("as_frame=True needs pandas, which is not installed: "
                          "pip install pandas (or leave as_frame out for a list of dicts)"
                          ) from exc
    return pd.DataFrame([flatten(t) for t in trials])


class ClientError(RuntimeError):
    """The server refused a request; ``detail`` is its explanation."""

    def __init__(self, status: int, detail: Any):
        self.status, self.detail = status, detail
        super().__init__(f"HTTP {status}: {_format_detail(detail)}")


def _format_detail(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', []) if p != 'body')}: {d.get('msg')}"
            for d in detail if isinstance(d, dict)
        )
    return str(detail)


class Client:
    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        base_url = base_url or os.environ.get("PARETONAS_URL", "http://127.0.0.1:8000")
        api_key = api_key or os.environ.get("PARETONAS_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._has_key = bool(api_key)
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url + "/api/v1", headers=headers,
                                  timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            if response.status_code == 401:  # the server names its own setting; say ours
                detail = (f"{detail} - this client sends the key from $PARETONAS_API_KEY "
                          "(or Client(api_key=...)); it is "
                          f"{'set' if self._has_key else 'not set'}")
            raise ClientError(response.status_code, detail)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    # --- studies --------------------------------------------------------------------------------
    def submit(self, spec: dict[str, Any] | str | Path, *,
               idempotency_key: str | None = None) -> dict[str, Any]:
        """Queue a study. With ``idempotency_key``, submitting again (a retry after a timeout)
        returns the study the key created instead of a second one."""
        if not isinstance(spec, dict):
            spec = json.loads(Path(spec).read_text())
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        study = self._request("POST", "/studies", json=spec, headers=headers)
        _warn(study)  # e.g. a constraint no arch meets: the study runs, the user should know
        return study

    def get(self, study_id: int) -> dict[str, Any]:
        return self._request("GET", f"/studies/{study_id}")

    def list(self, *, status: str | None = None, offset: int = 0, limit: int = 50) -> dict:
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if status:
            params["status"] = status
        return self._request("GET", "/studies", params=params)

    def cancel(self, study_id: int) -> dict[str, Any]:
        return self._request("POST", f"/studies/{study_id}/cancel")

    def update(self, study_id: int, *, name: str | None = None, tags: list[str] | None = None,
               notes: str | None = None) -> dict[str, Any]:
        """Rename a study, replace its tags and/or its notes (what is not given is kept)."""
        body = {k: v for k, v in (("name", name), ("tags", tags), ("notes", notes))
                if v is not None}
        return self._request("PATCH", f"/studies/{study_id}", json=body)

    def resume(self, study_id: int, *, trials: int, seconds: float | None = None
               ) -> dict[str, Any]:
        """Queue a finished study again with a new total budget of ``trials`` (and
        ``seconds``): extends a completed study, resumes a cancelled or failed one."""
        budget: dict[str, Any] = {"trials": trials}
        if seconds is not None:
            budget["seconds"] = seconds
        return self._request("POST", f"/studies/{study_id}/resume", json={"budget": budget})

    def delete(self, study_id: int) -> None:
        """Delete a study and its trials (a running study must be cancelled first)."""
        self._request("DELETE", f"/studies/{study_id}")

    def wait(
        self, study_id: int, *, progress: bool = True, poll_s: float = 1.0,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Block until the study is completed, failed or cancelled; show a progress bar."""
        from tqdm import tqdm

        deadline = time.monotonic() + timeout_s if timeout_s else None
        study = self.get(study_id)
        with tqdm(total=study["n_trials"], disable=not progress, unit="trial",
                  desc=f"study {study_id}") as bar:
            while True:
                done = study["n_complete"] + study["n_failed"]
                bar.n = done
                hv = study["best_hypervolume"]
                bar.set_postfix_str(f"{study['status']} hv={hv:.4g}" if hv else study["status"])
                if study["status"] in TERMINAL:
                    _warn(study, outcome_notes(study))
                    return study
                if deadline and time.monotonic() > deadline:
                    raise TimeoutError(f"study {study_id} still {study['status']}")
                time.sleep(poll_s)
                study = self.get(study_id)

    def trials(self, study_id: int, *, page_size: int = 1000, as_frame: bool = False):
        """Every trial as a list of dicts, or (``as_frame=True``) a pandas DataFrame with one
        row per trial: number, state, stage, on_front, accuracy (measured/predicted),
        duplicate_of, duration_s, error, the arch's dimensions, every metric and each metric's
        source as ``source:KEY``."""
        out: list[dict[str, Any]] = []
        while True:
            page = self._request("GET", f"/studies/{study_id}/trials",
                                 params={"offset": len(out), "limit": page_size})
            out.extend(page["data"])
            if len(out) >= page["count"] or not page["data"]:
                break
        return _frame(out, flat_trial) if as_frame else out

    def trials_csv(self, study_id: int) -> str:
        """Every trial as the server's CSV (constraint values, feasibility, sources...)."""
        return self._request("GET", f"/studies/{study_id}/trials.csv")

    def pareto(self, study_id: int, *, as_frame: bool = False):
        """The front as a list of dicts (number, arch, values...), or a pandas DataFrame."""
        front = self._request("GET", f"/studies/{study_id}/pareto")["data"]
        return _frame(front, flat_trial) if as_frame else front

    def pareto_csv(self, study_id: int) -> str:
        return self._request("GET", f"/studies/{study_id}/pareto.csv")

    def hypervolume(self, study_id: int) -> dict[str, Any]:
        return self._request("GET", f"/studies/{study_id}/hypervolume")

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health")

    # --- devices ------------------------------------------------------------------------------
    def devices(self) -> list[dict[str, Any]]:
        """The server's devices (defaults, config file, registered), settings included."""
        return self._request("GET", "/devices")["data"]

    def add_device(
        self, name: str, kind: str, settings: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Register a device: a known profiler kind with validated settings."""
        body = {"name": name, "kind": kind, "settings": settings or {}}
        return self._request("POST", "/devices", json=body)

    def profilers(self) -> list[dict[str, Any]]:
        """Profiler kinds with their metrics and settings schema."""
        return self._request("GET", "/profilers")["data"]
