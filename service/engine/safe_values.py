"""Values a study may carry into the database and back out as JSON.

Python's ``json`` reads ``NaN``/``Infinity`` and lone surrogates (``"\\ud800"``) without
complaint, but neither survives the trip: PostgreSQL refuses NaN in JSON and NUL in text, SQLite
and every JSON response refuse strings that are not encodable as UTF-8, and a non-finite
objective reference or constraint bound makes a study meaningless. So the spec model refuses
them up front, with the location of the offending value, through the checks here:

* ``SafeStr``: a ``str`` without NUL and encodable as UTF-8;
* ``SafeAny``: any JSON value whose floats are finite and whose strings (keys too) are safe;
* ``JsonObject``: ``dict[SafeStr, SafeAny]`` for free-form ``options`` (pydantic then reports
  the key of a bad value, e.g. ``search_space.options.path``).

``printable`` turns anything an error handler wants to echo into something JSON can encode.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator

#: Deeper nesting than this in free-form options is refused (and never needed).
MAX_DEPTH = 32


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored and echoed, or None."""
    if "\x00" in text:
        return "contains a NUL character (U+0000), which is not allowed"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"contains {text[exc.start]!r} at position {exc.start}, a lone surrogate that "
                "is not valid Unicode text")
    return None


def value_problem(value: Any, *, depth: int = 0) -> str | None:
    """Why a JSON value cannot be stored, or None; names the nested key or index at fault."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not allowed: numbers must be finite"
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, list | tuple | dict):
        if depth >= MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and (problem := text_problem(key)):
                return f"key {printable(key)!r} {problem}"
            if problem := value_problem(item, depth=depth + 1):
                return f"[{printable(key)!r}]: {problem}"
    return None


def _check_text(text: str) -> str:
    if problem := text_problem(text):
        raise ValueError(problem)
    return text


def _check_value(value: Any) -> Any:
    if problem := value_problem(value):
        raise ValueError(problem)
    return value


SafeStr = Annotated[str, AfterValidator(_check_text)]
SafeAny = Annotated[Any, AfterValidator(_check_value)]
JsonObject = dict[SafeStr, SafeAny]


def printable(value: Any, *, depth: int = 0) -> Any:
    """A copy of ``value`` that ``json.dumps(allow_nan=False)`` and UTF-8 always accept:
    non-finite floats become the strings ``"NaN"``/``"Infinity"``, unencodable characters
    backslash escapes, anything else its ``str``."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value).replace("inf", "Infinity").replace(
            "nan", "NaN")
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if depth >= MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {str(printable(k, depth=depth + 1)): printable(v, depth=depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [printable(v, depth=depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return printable(str(value), depth=depth + 1)
