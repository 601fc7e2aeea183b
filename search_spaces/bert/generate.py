"""Write the standard-library topic task (real English docstring sentences) as GLUE-style TSVs.

Plug-in module of ``paretonas data stdlib-topics DIR``: ``add_arguments(parser)`` and
``main(args) -> int``. The result is a ``task`` directory for the ``bert`` space.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from search_spaces.bert.corpus import TOPICS, write_stdlib_topic_task

#: what ``paretonas ... --help`` shows (the docstring is for developers)
CLI_HELP = (
    "Write the standard-library topic task (English docstring sentences labelled by "
    "module) as GLUE-style TSV files: a task directory for the bert space."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="output directory (train.tsv, dev.tsv)")
    parser.add_argument("--pairs", action="store_true",
                        help="sentence-pair task (same/different topic) instead of topics")
    parser.add_argument("--dev-fraction", type=float, default=0.25,
                        help="share of rows in dev.tsv (0 < f < 1; default 0.25)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N sentences")


def main(args: argparse.Namespace) -> int:
    if not 0 < args.dev_fraction < 1:
        print(f"error: --dev-fraction must be between 0 and 1, got {args.dev_fraction}",
              file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 10:
        print(f"error: --limit must be at least 10, got {args.limit}", file=sys.stderr)
        return 2
    if args.directory.exists() and not args.directory.is_dir():
        print(f"error: {args.directory} exists and is not a directory", file=sys.stderr)
        return 2
    counts = write_stdlib_topic_task(args.directory, pairs=args.pairs,
                                     dev_fraction=args.dev_fraction, limit=args.limit)
    labels = ["same", "different"] if args.pairs else sorted(TOPICS)
    print(json.dumps({"directory": str(args.directory), "rows": counts, "labels": labels}))
    return 0
