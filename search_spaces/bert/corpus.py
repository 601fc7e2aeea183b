"""Real English text that ships with Python: sentences from the docstrings of standard-library
modules, labelled by the topic of the module they document.

Used as the default text set for the fidelity proxy and, written out as GLUE-style TSV files by
``write_stdlib_topic_task``, as a real single-sentence (or sentence-pair) classification task for
tests and the demo. The sentences are whatever the running interpreter's standard library says,
so they are deterministic for one Python version; sentences that occur under two topics
(inherited docstrings) are dropped so that every label is unambiguous.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
from functools import lru_cache
from pathlib import Path

#: topic -> standard-library modules whose docstrings are that topic's sentences
TOPICS: dict[str, tuple[str, ...]] = {
    "text": ("string", "textwrap", "difflib", "re", "unicodedata", "html", "html.parser",
             "codecs", "locale", "gettext"),
    "files": ("os", "os.path", "pathlib", "shutil", "tempfile", "glob", "fnmatch", "zipfile",
              "tarfile", "io", "filecmp", "stat"),
    "network": ("socket", "http.client", "http.server", "urllib.request", "urllib.parse",
                "smtplib", "ftplib", "email.message", "ssl", "imaplib", "poplib",
                "socketserver"),
    "concurrency": ("threading", "multiprocessing", "asyncio", "concurrent.futures", "queue",
                    "subprocess", "sched", "selectors", "signal"),
    "numbers": ("math", "statistics", "decimal", "fractions", "random", "cmath", "numbers",
                "operator"),
}
_SPLIT = re.compile(r"(?<=[.!?])\s+")


def _sentences(doc: str) -> list[str]:
    """Prose sentences of a docstring: 6-40 words, capitalised, full stop, mostly letters."""
    out = []
    for para in re.split(r"\n\s*\n", doc):
        if ">>>" in para or "::" in para:  # code examples are not English prose
            continue
        for sent in _SPLIT.split(" ".join(para.split())):
            if not 6 <= len(sent.split()) <= 40 or not sent[0].isupper() or sent[-1] != ".":
                continue
            if sum(c.isalpha() or c == " " for c in sent) / len(sent) >= 0.85:
                out.append(sent)
    return out


def _module_docs(module_name: str) -> list[str]:
    mod = importlib.import_module(module_name)
    docs = [mod.__doc__ or ""]
    for name, obj in sorted(vars(mod).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        docs.append(inspect.getdoc(obj) or "")
        if inspect.isclass(obj):
            docs.extend(
                inspect.getdoc(member) or ""
                for member_name, member in sorted(vars(obj).items())
                if not member_name.startswith("_") and callable(member)
            )
    return docs


@lru_cache(maxsize=1)
def stdlib_topic_sentences() -> tuple[tuple[str, str], ...]:
    """(sentence, topic) pairs in a deterministic, topic-interleaved order."""
    by_topic: dict[str, list[str]] = {}
    owner: dict[str, set[str]] = {}
    for topic, modules in TOPICS.items():
        seen: dict[str, None] = {}
        for module in modules:
            for doc in _module_docs(module):
                for sent in _sentences(doc):
                    seen.setdefault(sent)
        by_topic[topic] = list(seen)
        for sent in seen:
            owner.setdefault(sent, set()).add(topic)
    # order by a content hash so a prefix is a fair sample across modules and topics
    rows = [(s, t) for t, sents in by_topic.items() for s in sents if len(owner[s]) == 1]
    rows.sort(key=lambda r: hashlib.sha256(r[0].encode()).hexdigest())
    return tuple(rows)


def stdlib_sentences(n: int) -> list[str]:
    """The first ``n`` unlabelled sentences (the default fidelity text set)."""
    return [s for s, _ in stdlib_topic_sentences()[:n]]


def write_stdlib_topic_task(
    directory: str | Path, *, pairs: bool = False, dev_fraction: float = 0.25,
    limit: int | None = None,
) -> dict[str, int]:
    """Write ``train.tsv`` and ``dev.tsv`` (GLUE layout: header row, tab-separated).

    Single-sentence: ``sentence\\tlabel`` with the topic as label. ``pairs``: consecutive
    sentences form ``sentence1\\tsentence2\\tlabel`` with label ``same``/``different`` topic.
    The split is by content hash, so it is stable. Returns row counts per file.
    """
    rows = list(stdlib_topic_sentences())
    if limit is not None:
        rows = rows[:limit]
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if pairs:
        header = ["sentence1", "sentence2", "label"]
        records = [
            [a, b, "same" if ta == tb else "different"]
            for (a, ta), (b, tb) in zip(rows[0::2], rows[1::2], strict=False)
        ]
    else:
        header = ["sentence", "label"]
        records = [[s, t] for s, t in rows]
    split = {"train": [], "dev": []}
    for rec in records:
        # salted: rows are already ordered by the unsalted hash, so reusing it would put any
        # prefix (``limit``) entirely into one split
        salted = hashlib.sha256(("split|" + "\t".join(rec[:-1])).encode()).hexdigest()
        bucket = int(salted[:8], 16)
        split["dev" if bucket / 0xFFFFFFFF < dev_fraction else "train"].append(rec)
    counts = {}
    for name, recs in split.items():
        # plain lines as GLUE ships them (no quoting); sentences never contain tabs
        lines = ["\t".join(header), *("\t".join(rec) for rec in recs)]
        (out / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts[name] = len(recs)
    return counts
