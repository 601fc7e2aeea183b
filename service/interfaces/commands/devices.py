"""``paretonas devices list|add|measure|calibrate-gap8``: devices and their profilers.

``list``/``add`` talk to a server (``--url``); ``measure`` profiles one subnet of a search space
on a device in this process (default and config-file devices, and with ``--url`` the devices
registered on that server); ``calibrate-gap8`` re-fits the GAP8 analytic model to the published
latencies and prints the fit and its errors.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from service.interfaces.commands import CliError


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw  # a bare string


def _parse_settings(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key] = _parse_value(value)
    return out


def _list(args: argparse.Namespace) -> int:
    from service.interfaces.commands.studies import _call, _client

    devices = _call(_client(args).devices)
    for d in devices:
        metrics = ",".join(m["name"] for m in d["metrics"])
        print(f"{d['name']:<20} {d['kind']:<16} {d['source']:<8} {metrics}  "
              f"{json.dumps(d['settings'], sort_keys=True)}")
    return 0


def _add(args: argparse.Namespace) -> int:
    from service.interfaces.commands.studies import _call, _client

    device = _call(_client(args).add_device, args.name, args.kind, _parse_settings(args.set))
    print(json.dumps(device, indent=2))
    return 0


def _measure(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from evaluators.profilers.base import ProfilerError
    from evaluators.profilers.devices import DeviceCatalog, DeviceError
    from search_spaces.base import ArchError
    from service.engine.resolve import SpecError, build_space
    from service.settings import get_settings

    options = _parse_value(args.options)
    if not isinstance(options, dict):
        raise CliError("--options must be a JSON object")
    try:
        catalog = DeviceCatalog.from_config(get_settings().config_file)
        if args.device not in catalog and (args.url or os.environ.get("PARETONAS_URL")):
            _add_server_device(args, catalog)
        profiler = catalog.profiler(args.device)
        if args.layers and "layer_details" in type(profiler).Settings.model_fields:
            profiler = type(profiler)({**profiler.settings.model_dump(), "layer_details": True})
        space = build_space(args.space, options)
        if args.arch in ("largest", "smallest"):
            arch = getattr(space, args.arch)()
        else:
            arch = _partial_arch(space, _parse_value(args.arch))
        result = profiler.measure(space.extract(arch).eval(), space.example_input(arch))
    except KeyError as exc:
        raise CliError(str(exc.args[0])) from exc
    except (DeviceError, SpecError, ArchError, ProfilerError, ValidationError) as exc:
        raise CliError(str(exc)) from exc
    details = result.details
    print(json.dumps({"device": args.device, "kind": profiler.name, "arch": arch.to_dict(),
                      "metrics": result.all_metrics(), "samples_ms": result.samples_ms,
                      "details": details}, indent=2, default=str))
    return 0


def _partial_arch(space, raw: Any):
    """A JSON arch; dimensions it leaves out take the largest arch's values (said on stderr)."""
    import sys

    if not isinstance(raw, dict):
        raise CliError("--arch must be 'largest', 'smallest' or a JSON object")
    largest = space.largest().to_dict()
    unknown = sorted(set(raw) - set(largest))
    if unknown:
        raise CliError(f"--arch: unknown dimension(s) {unknown}; allowed: {sorted(largest)}")
    filled = sorted(set(largest) - set(raw))
    if filled:
        print(f"--arch: {len(filled)} dimension(s) not given take the largest arch's values: "
              + ", ".join(f"{d}={largest[d]}" for d in filled), file=sys.stderr)
    return space.validate({**largest, **raw})


def _add_server_device(args: argparse.Namespace, catalog) -> None:
    """Measure on a device registered on the server: its kind and settings, checked as the
    server checks API devices (no config-only settings such as a simulator command)."""
    from evaluators.profilers.devices import DeviceSpec
    from service.interfaces.commands.studies import _call, _client

    listed = {d["name"]: d for d in _call(_client(args).devices)}
    if args.device not in listed:
        here, there = ", ".join(catalog.names()), ", ".join(sorted(listed)) or "none"
        raise CliError(f"unknown device {args.device!r}: neither here ({here}) nor on the "
                       f"server ({there})")
    d = listed[args.device]
    spec = DeviceSpec(name=d["name"], kind=d["kind"], settings=d["settings"])
    catalog.add(spec.validated(source="api"), source="api")


def _calibrate(args: argparse.Namespace) -> int:
    from evaluators.profilers.gap8 import calibrate

    argv = ["--csv", args.csv] if args.csv else []
    try:
        return calibrate.main(argv)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from exc


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help="list/register devices, measure a subnet, calibrate GAP8")
    dsub = p.add_subparsers(dest="devices_command", required=True, metavar="ACTION")

    def with_url(q: argparse.ArgumentParser) -> argparse.ArgumentParser:
        q.add_argument("--url", default=None,
                       help="server URL (default $PARETONAS_URL or http://127.0.0.1:8000)")
        return q

    with_url(dsub.add_parser("list", help="the server's devices")).set_defaults(func=_list)
    q = with_url(dsub.add_parser("add", help="register a device on the server"))
    q.add_argument("name")
    q.add_argument("kind", help="profiler kind: torch-cpu, onnxruntime-cpu, gap8, ...")
    q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting (JSON value), e.g. --set threads=2; repeatable")
    q.set_defaults(func=_add)

    q = dsub.add_parser("measure", help="profile one subnet on a device, here")
    q.add_argument("space", help="search space name")
    q.add_argument("--device", default="cpu", help="device name (default cpu)")
    q.add_argument("--url", default=None,
                   help="also look the device up among those registered on this server")
    q.add_argument("--options", default="{}", help="search space options (JSON)")
    q.add_argument("--arch", default="largest",
                   help="largest, smallest or a JSON arch; dimensions left out take the "
                   "largest arch's values")
    q.add_argument("--layers", action="store_true", help="include per-layer details")
    q.set_defaults(func=_measure)

    q = dsub.add_parser("calibrate-gap8", help="fit the GAP8 model to published latencies, "
                        "with leave-one-out and leave-one-family-out errors")
    q.add_argument("--csv", default=None,
                   help="calibration CSV (default: evaluators/profilers/gap8/calibration.csv)")
    q.set_defaults(func=_calibrate)
