"""``python -m service.interfaces.healthcheck``: exit 0 when the named dependencies answer, 1
otherwise.

Container healthchecks use it (docker-compose.yml): ``--api URL`` (the REST API's /health),
``--database`` (``PARETONAS_DATABASE_URL`` accepts a query, without migrating). One line on
stderr says what failed.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request


def check_api(url: str, *, timeout_s: float = 4.0) -> None:
    with urllib.request.urlopen(url.rstrip("/") + "/api/v1/health", timeout=timeout_s) as r:
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}")


def check_database(url: str) -> None:
    from sqlalchemy import create_engine, make_url, text

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        from pathlib import Path

        if not Path(parsed.database).is_file():  # connecting would create an empty file
            raise FileNotFoundError(f"SQLite database {parsed.database} does not exist")

    engine = create_engine(url, connect_args={"connect_timeout": 4}
                           if url.startswith("postgresql") else {})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.interfaces.healthcheck")
    parser.add_argument("--api", metavar="URL", help="base URL of the REST API")
    parser.add_argument("--database", action="store_true", help="PARETONAS_DATABASE_URL")
    args = parser.parse_args(argv)
    if not (args.api or args.database):
        parser.error("name something to check: --api URL and/or --database")
    try:
        if args.api:
            check_api(args.api)
        if args.database:
            from service.settings import Settings

            check_database(Settings().database_url)
    except Exception as exc:  # any failure is "unhealthy": say which, briefly
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
