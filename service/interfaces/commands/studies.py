"""``paretonas submit|status|pareto|trials|cancel|resume|update|delete``: the Python client on
the command line."""

from __future__ import annotations

import argparse
import json

from service.interfaces.commands import CliError


def _client(args: argparse.Namespace):
    import warnings

    from service.interfaces.client import Client, StudyWarning

    warnings.simplefilter("ignore", StudyWarning)  # the commands print them as plain lines
    return Client(args.url)


def _print_notes(study: dict, *, outcome_only: bool = False) -> None:
    """The study's warnings and why it has no feasible trial, if so (stderr: not data);
    ``outcome_only``: just the latter (the warnings were printed at submit)."""
    import sys

    from service.interfaces.client import outcome_notes, study_notes

    for line in (outcome_notes if outcome_only else study_notes)(study):
        print(f"warning: {line}", file=sys.stderr)


def _call(fn, *a, **kw):
    import httpx

    from service.interfaces.client import ClientError

    try:
        return fn(*a, **kw)
    except ClientError as exc:
        raise CliError(str(exc)) from exc
    except httpx.HTTPError as exc:
        url = getattr(getattr(fn, "__self__", None), "base_url", None)
        where = f" at {url}" if url else ""
        raise CliError(f"cannot reach the server{where}: {exc} (is `paretonas serve` running "
                       "there? --url or $PARETONAS_URL choose another)") from exc


def _num(v) -> str:
    return "" if v is None else f"{v:.5g}"


def _print_aligned(header: list[str], rows: list[list[str]]) -> None:
    """Columns padded to their widest cell (numbers right-aligned); the last column free."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    numeric = [all(_is_number(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in [header, *rows]:
        cells = [c.rjust(w) if num else c.ljust(w)
                 for c, w, num in zip(r[:-1], widths, numeric, strict=True)]
        print("  ".join([*cells, r[-1]]).rstrip())


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return cell == ""
    return True


def _print_front(front: list[dict]) -> None:
    if not front:
        print("(no Pareto-optimal trial yet)")
        return
    keys = list(front[0]["values"])
    rows = [[str(t["number"]), *(_num(t["values"].get(k)) for k in keys),
             json.dumps(t["arch"], sort_keys=True)]
            for t in sorted(front, key=lambda t: t["values"][keys[0]])]
    _print_aligned(["#", *keys, "arch"], rows)


def _submit(args):
    from service.interfaces.commands.run import load_spec_file

    spec = load_spec_file(args.spec).model_dump(mode="json")
    client = _client(args)
    study = _call(client.submit, spec, idempotency_key=args.idempotency_key)
    print(f"submitted study {study['id']} ({study['name']})")
    _print_notes(study)
    if args.wait:
        study = _call(client.wait, study["id"])
        print(f"study {study['id']} {study['status']}")
        _print_notes(study, outcome_only=True)
        _print_front(_call(client.pareto, study["id"]))
        print(f"viewer: {client.base_url}/studies/{study['id']}")
        return 0 if study["status"] == "completed" else 1
    return 0


def _hv(s: dict) -> str:
    return _num(s.get("hypervolume_normalised"))


def _status(args):
    client = _client(args)
    if args.study is None:
        rows = [[str(s["id"]), s["status"], f"{s['n_complete'] + s['n_failed']}/{s['n_trials']}",
                 _hv(s), _num(s["best_hypervolume"]), s["search_space"], s["name"]]
                for s in _call(client.list, limit=args.limit)["data"]]
        if not rows:
            print("(no studies)")
            return 0
        _print_aligned(["id", "status", "trials", "hv (0-1)", "hv (own ref)", "space", "name"],
                       rows)
        return 0
    s = _call(client.get, args.study)
    print(json.dumps({k: s.get(k) for k in (
        "id", "name", "status", "n_trials", "n_complete", "n_failed", "progress",
        "hypervolume_normalised", "best_hypervolume", "tags", "notes", "error")}, indent=2))
    _print_notes(s)
    return 0


def _pareto(args):
    client = _client(args)
    if args.csv:
        print(_call(client.pareto_csv, args.study), end="")
    elif args.json:
        print(json.dumps(_call(client.pareto, args.study), indent=2))
    else:
        front = _call(client.pareto, args.study)
        _print_front(front)
        if not front:
            _print_notes(_call(client.get, args.study))
    return 0


def _trials(args):
    client = _client(args)
    if args.csv:
        print(_call(client.trials_csv, args.study), end="")
    elif args.json:
        print(json.dumps(_call(client.trials, args.study), indent=2))
    else:
        trials = _call(client.trials, args.study)
        _print_trials(trials, _call(client.get, args.study))
    return 0


def _print_trials(trials: list[dict], study: dict) -> None:
    keys = [o["key"] for o in study["objectives"]]
    rows = [[str(t["number"]), t["state"], "*" if t["on_front"] else "",
             *(_num(t["values"].get(k)) for k in keys),
             t["error"] or json.dumps(t["arch"], sort_keys=True)] for t in trials]
    _print_aligned(["#", "state", "front", *keys, "arch / error"], rows)


def _cancel(args):
    s = _call(_client(args).cancel, args.study)
    print(f"study {s['id']}: {s['status']}" + (" (stops after its current trial)"
                                               if s["status"] == "running" else ""))
    return 0


def _resume(args):
    s = _call(_client(args).resume, args.study, trials=args.trials, seconds=args.seconds)
    print(f"study {s['id']}: {s['status']} again, budget {s['n_trials']} trials "
          f"({s['n_complete'] + s['n_failed']} already run)")
    return 0


def _update(args):
    tags = None if args.tags is None else [t for t in args.tags.split(",") if t.strip()]
    if args.name is None and tags is None and args.notes is None:
        raise CliError("nothing to change: give --name, --tags and/or --notes")
    s = _call(_client(args).update, args.study, name=args.name, tags=tags, notes=args.notes)
    print(f"study {s['id']}: {s['name']}" + (f"  tags: {', '.join(s['tags'])}"
                                            if s["tags"] else ""))
    return 0


def _delete(args):
    _call(_client(args).delete, args.study)
    print(f"study {args.study} deleted")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    def add(name: str, help_: str, func):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--url", default=None, help="server URL (default $PARETONAS_URL or "
                       "http://127.0.0.1:8000)")
        p.set_defaults(func=func)
        return p

    p = add("submit", "submit a study spec to the server", _submit)
    p.add_argument("spec", help="study spec JSON file")
    p.add_argument("--wait", action="store_true", help="follow it and print the front")
    p.add_argument("--idempotency-key", default=None, metavar="KEY",
                   help="submitting again with the same KEY returns the study it created")
    p = add("status", "list studies, or show one", _status)
    p.add_argument("study", nargs="?", type=int)
    p.add_argument("--limit", type=int, default=20)
    p = add("pareto", "print a study's Pareto front", _pareto)
    p.add_argument("study", type=int)
    p.add_argument("--csv", action="store_true")
    p.add_argument("--json", action="store_true")
    p = add("trials", "print every trial of a study (--csv: all columns, for a spreadsheet)",
            _trials)
    p.add_argument("study", type=int)
    p.add_argument("--csv", action="store_true",
                   help="every metric, constraint values, sources, stage, errors")
    p.add_argument("--json", action="store_true")
    p = add("cancel", "cancel a study (after its current trial)", _cancel)
    p.add_argument("study", type=int)
    p = add("resume", "extend a finished study or resume a cancelled one (its trials are kept)",
            _resume)
    p.add_argument("study", type=int)
    p.add_argument("--trials", type=int, required=True,
                   help="the new total number of trials (more than those already run)")
    p.add_argument("--seconds", type=float, default=None,
                   help="the new total wall-clock limit (default: none)")
    p = add("update", "rename a study, set its tags or its notes", _update)
    p.add_argument("study", type=int)
    p.add_argument("--name", default=None)
    p.add_argument("--tags", default=None, help="comma-separated; replaces the tags ('' clears)")
    p.add_argument("--notes", default=None, help="free text; replaces the notes")
    p = add("delete", "delete a study and its trials (cancel a running one first)", _delete)
    p.add_argument("study", type=int)
