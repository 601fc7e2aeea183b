"""docker-compose.yml and the Dockerfile agree with the CLI and the settings (docker does not run
here, so the file is checked as data: services, commands, environment, healthchecks, volumes)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import yaml
from sqlalchemy import make_url

from service.interfaces.cli import build_parser
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def substitute(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR:?message} with nothing set: the default or 'set'."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "set", value)


def test_the_services_exist_and_start_in_order(compose):
    services = compose["services"]
    assert {"postgres", "api", "worker", "ray-head", "ray-worker", "ray-driver"} <= set(services)
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no healthcheck"
    for name in ("api", "worker", "ray-driver"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "ray-driver"):  # the API migrates the schema before workers start
        assert services[name]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["ray-worker"]["deploy"]["replicas"] >= 2


def commands_of(svc: dict) -> list[list[str]]:
    """The command lines a service runs: its command, or each `&&` step of an `sh -c` one."""
    command = svc.get("command") or []
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(step) for step in command[2].split("&&")]
    return [command] if command else []


def test_paretonas_commands_parse_with_the_real_cli(compose):
    parser = build_parser()
    seen = set()
    for name, svc in compose["services"].items():
        for command in commands_of(svc):
            if command[:1] == ["exec"]:
                command = command[1:]
            if command[0] != "paretonas":
                continue
            args = parser.parse_args(command[1:])  # SystemExit (a failure) on unknown options
            seen.add(args.command)
            if name == "api":
                assert args.host == "0.0.0.0" and not args.insecure
                assert env_of(svc)["PARETONAS_API_KEYS"], "a public API needs keys"
                assert svc["ports"] == [f"{args.port}:{args.port}"]
            if name == "ray-driver":
                # a Tune driver must be on a Ray node: this container joins first
                assert args.backend == "ray" and args.address == "auto"
                first = commands_of(svc)[0]
                assert first[:2] == ["ray", "start"] and "--num-cpus=0" in first
    assert seen == {"serve", "worker"}


def test_ray_nodes_join_the_head(compose):
    head = compose["services"]["ray-head"]["command"]
    assert head[:3] == ["ray", "start", "--head"] and "--block" in head
    port = next(a.split("=")[1] for a in head if a.startswith("--port="))
    worker = compose["services"]["ray-worker"]["command"]
    assert f"--address=ray-head:{port}" in worker and "--block" in worker
    assert f"--address=ray-head:{port}" in commands_of(compose["services"]["ray-driver"])[0]


def test_environment_names_real_settings_with_valid_values(compose, monkeypatch):
    import search_spaces.paths

    # PARETONAS_DATA_DIRS is read by the search spaces (search_spaces.paths), not by Settings
    assert "PARETONAS_DATA_DIRS" in Path(search_spaces.paths.__file__).read_text()
    fields = set(Settings.model_fields) | {"data_dirs"}
    for name, svc in compose["services"].items():
        if name == "postgres":
            continue
        env = {k: substitute(v) for k, v in env_of(svc).items()}
        names = {k.removeprefix("PARETONAS_").lower() for k in env if k.startswith("PARETONAS_")}
        assert names <= fields, f"{name}: unknown settings {sorted(names - fields)}"
        with monkeypatch.context() as m:  # parsed as the container would: from its environment
            for k in [k for k in os.environ if k.startswith("PARETONAS_")]:
                m.delenv(k)
            for k, v in env.items():
                m.setenv(k, v)
            settings = Settings()
        url = make_url(settings.database_url)
        pg = env_of(compose["services"]["postgres"])
        assert url.host == "postgres" and url.database == pg["POSTGRES_DB"]
        assert url.username == pg["POSTGRES_USER"]
        assert substitute(pg["POSTGRES_PASSWORD"]) == url.password
        assert settings.heartbeat_seconds < settings.lease_seconds
        assert "/data" in str(env["PARETONAS_DATA_DIRS"])


def test_volumes_persist_the_database_and_mount_data_read_only(compose):
    assert "pgdata" in compose["volumes"]
    assert "pgdata:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    for name in ("api", "worker", "ray-worker", "ray-driver"):
        assert "./data:/data:ro" in compose["services"][name]["volumes"], name


def test_healthchecks_run_real_commands(compose):
    from service.interfaces import healthcheck

    parser = build_parser()
    for svc in compose["services"].values():
        test = svc["healthcheck"]["test"]
        if test[:3] == ["CMD", "python", "-m"]:
            assert test[3] == "service.interfaces.healthcheck"
            with pytest.raises(SystemExit) as exit_info:  # --help exits 0 only if args parse
                healthcheck.main([*test[4:], "--help"])
            assert exit_info.value.code == 0
        elif test[0] == "CMD" and test[1] == "paretonas":
            parser.parse_args(test[2:])
    assert healthcheck.main(["--api", "http://127.0.0.1:9"]) == 1  # nothing listens there


def test_dockerfile_installs_the_package_and_runs_the_cli():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", text, re.M)
    assert "pip install ." in text and "USER paretonas" in text
    assert re.search(r'ray\[[a-z,]*default[a-z,]*\]', text), "ray start --head needs it"
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M).group(1)
    args = yaml.safe_load(cmd)
    assert args[0] == "paretonas"
    build_parser().parse_args(args[1:])
    for folder in ("service", "search_spaces", "evaluators", "surrogate"):
        assert f"COPY {folder} ./{folder}" in text
    # torch pinned to the version the project pins, from the CPU index
    pinned = re.search(r'"torch==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert f"torch=={pinned}" in text and "whl/cpu" in text


def test_database_healthcheck(tmp_path, monkeypatch, database_url):
    from service.interfaces import healthcheck
    from service.persistence.db import Database

    Database(database_url).dispose()
    monkeypatch.setenv("PARETONAS_DATABASE_URL", database_url)
    assert healthcheck.main(["--database"]) == 0
    missing = tmp_path / "missing.db"
    monkeypatch.setenv("PARETONAS_DATABASE_URL", f"sqlite:///{missing}")
    assert healthcheck.main(["--database"]) == 1 and not missing.exists()
    monkeypatch.setenv("PARETONAS_DATABASE_URL", "postgresql+psycopg://x:y@127.0.0.1:9/none")
    assert healthcheck.main(["--database"]) == 1


def test_the_image_holds_every_installed_package():
    """``pip install .`` in the Dockerfile installs what pyproject finds: every package it
    includes must be copied in first, or the image installs without it."""
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(), re.M))
    assert packages <= copied, sorted(packages - copied)
