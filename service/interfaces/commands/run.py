"""``paretonas run spec.json``: run a study in-process, no server, and write its result."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from service.interfaces.commands import CliError


def load_spec_file(path: str):
    from pydantic import ValidationError

    from service.engine.spec import StudySpec

    try:
        raw = json.loads(Path(path).read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from exc
    try:
        return StudySpec.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise CliError(f"{path} is not a valid study spec:\n" + "\n".join(lines)) from exc


def run_in_process(spec, *, progress: bool = True) -> dict[str, Any]:
    """Run ``spec`` with the in-memory store, on the spec's backend (local, or Ray: the
    ``PARETONAS_RAY_*`` settings say where); return the result document."""
    from tqdm import tqdm

    from evaluators.profilers.devices import DeviceCatalog
    from service.engine.checks import record_outcome, record_start_warnings
    from service.engine.executors import make_executor
    from service.engine.records import MemoryStore
    from service.engine.resolve import resolve_spec
    from service.engine.runner import StudyRunner
    from service.settings import get_settings

    settings = get_settings()
    # the config file's devices (e.g. a GVSOC flow) are usable without a server too
    resolved = resolve_spec(spec, devices=DeviceCatalog.from_config(settings.config_file))
    store = MemoryStore()
    record_start_warnings(store, resolved)  # into extra.warnings, as a worker does
    executor = make_executor(resolved, ray_address=settings.ray_address,
                             ray_device_resources=settings.ray_device_resources)
    with tqdm(total=spec.budget.trials, unit="trial", disable=not progress) as bar:
        store.add_observer(lambda record: bar.update(1))
        status = StudyRunner(resolved, store, executor=executor).run()
    record_outcome(store, spec)  # extra.no_feasible: why, if no trial is feasible
    trials = store.trials
    return {
        "study": {**spec.model_dump(mode="json"), "status": status,
                  "reference_point": store.reference_point, "extra": store.extra},
        "trials": [{"number": t.number, "arch": t.arch, "values": t.values, "state": t.state,
                    "stage": t.stage, "error": t.error} for t in trials],
        "pareto": [{"number": t.number, "arch": t.arch, "values": t.values}
                   for t in trials if t.on_front],
        "hypervolume": store.best_hypervolume,
    }


def _run(args: argparse.Namespace) -> int:
    from evaluators.profilers.devices import DeviceError
    from service.engine.resolve import SpecError

    spec = load_spec_file(args.spec)
    try:
        result = run_in_process(spec, progress=not args.quiet)
    except SpecError as exc:
        raise CliError(f"{args.spec}: {exc}") from exc
    except DeviceError as exc:
        raise CliError(str(exc)) from exc
    from service.interfaces.commands.studies import _print_notes

    _print_notes(result["study"])  # not data: stderr, like the client commands
    text = json.dumps(result, indent=2)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}: {len(result['trials'])} trials, "
              f"{len(result['pareto'])} on the front, hypervolume {result['hypervolume']}")
    else:
        print(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a study in this process (no server)")
    p.add_argument("spec", help="study spec JSON file")
    p.add_argument("--output", "-o", help="write the result JSON here (default: stdout)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
