from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from evaluators.profilers.devices import (
    DEFAULT_DEVICES,
    DeviceCatalog,
    DeviceError,
    DeviceSpec,
    load_config_devices,
)
from evaluators.profilers.gap8.profiler import Gap8Profiler
from paretonas_core.registry import UnknownNameError

FAKE = Path(__file__).parent / "fixtures" / "fake_gvsoc.py"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "paretonas.yaml"
    path.write_text(text)
    return path


def test_defaults_are_valid_and_cover_every_builtin_kind() -> None:
    for device in DEFAULT_DEVICES.values():
        assert device.validated().kind == device.kind
    assert {d.kind for d in DEFAULT_DEVICES.values()} == {"torch-cpu", "onnxruntime-cpu", "gap8"}


def test_config_file_adds_a_gvsoc_device(tmp_path, monkeypatch) -> None:
    path = write(tmp_path, f"""
devices:
  - name: gap8-sim
    kind: gap8
    settings:
      mode: gvsoc
      command: ["{sys.executable}", "{FAKE}", "{{onnx}}"]
      timeout_s: 60
  - name: cpu2
    kind: torch-cpu
    settings: {{threads: 2, repeats: 5}}
""")
    monkeypatch.setenv("PARETONAS_CONFIG_FILE", str(path))
    catalog = DeviceCatalog.from_config()
    assert {"cpu", "ort-cpu", "gap8", "gap8-sim", "cpu2"} <= set(catalog.names())
    assert catalog.source("gap8-sim") == "config" and catalog.source("cpu") == "default"
    profiler = catalog.profiler("gap8-sim")
    assert isinstance(profiler, Gap8Profiler) and profiler.settings.mode == "gvsoc"
    # settings are stored with their defaults filled in
    assert catalog.get("cpu2").settings["warmup"] == 3


@pytest.mark.parametrize(
    "text, message",
    [
        ("devices: [{name: x, kind: tpu}]", "unknown profiler 'tpu'; allowed: gap8, "),
        ("devices: [{name: x, kind: torch-cpu, settings: {threads: 0}}]",
         "devices\\[0\\]: settings.threads"),
        ("devices: [{name: x, kind: torch-cpu, settings: {cores: 2}}]", "cores"),
        ("devices: [{name: x, kind: gap8, settings: {mode: gvsoc}}]", "needs a 'command'"),
        ("devices: [{name: 'a b', kind: gap8}]", "name"),
        ("devices: [{name: x, kind: gap8}, {name: x, kind: gap8}]", "duplicate device name"),
        ("devices: {x: 1}", "'devices' must be a list"),
        ("[1, 2]", "expected a mapping"),
        ("devices: [{name: x", "not valid YAML"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path, text, message) -> None:
    with pytest.raises(DeviceError, match=message) as info:
        load_config_devices(write(tmp_path, text))
    assert "paretonas.yaml" in str(info.value)


def test_missing_config_file(tmp_path) -> None:
    with pytest.raises(DeviceError, match="cannot read"):
        DeviceCatalog.from_config(tmp_path / "nope.yaml")


def test_api_devices_cannot_set_a_command() -> None:
    spec = DeviceSpec(name="evil", kind="gap8", settings={"mode": "gvsoc", "command": ["rm"]})
    with pytest.raises(DeviceError, match="only be set in the server config file"):
        spec.validated(source="api")
    with pytest.raises(ValidationError, match="needs a 'command'"):
        DeviceSpec(name="sim", kind="gap8", settings={"mode": "gvsoc"}).validated(source="api")
    ok = DeviceSpec(name="gap8-90", kind="gap8", settings={"cluster_mhz": 90}).validated(
        source="api"
    )
    assert ok.settings["cluster_mhz"] == 90


def test_unknown_kind_lists_the_kinds() -> None:
    with pytest.raises(UnknownNameError, match="onnxruntime-cpu"):
        DeviceSpec(name="x", kind="tpu").validated(source="api")


def test_settings_hash_follows_settings() -> None:
    a = DeviceSpec(name="a", kind="torch-cpu", settings={"threads": 1}).validated()
    b = DeviceSpec(name="b", kind="torch-cpu", settings={"threads": 1}).validated()
    c = DeviceSpec(name="c", kind="torch-cpu", settings={"threads": 2}).validated()
    assert a.settings_hash() == b.settings_hash() != c.settings_hash()


def test_unknown_device_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="known devices: cpu, gap8, ort-cpu"):
        DeviceCatalog().get("tpu")
