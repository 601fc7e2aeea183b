"""A busy database answers 503 with ``Retry-After`` after a bounded wait, never a 500.

Each statement waits a short while for a lock (SQLite's busy timeout, PostgreSQL's
``lock_timeout``: ``PARETONAS_DB_LOCK_TIMEOUT_SECONDS``); when it gives up, the request is run
again from the start with exponential back-off until ``PARETONAS_WRITE_RETRY_SECONDS`` have
passed, then the client gets 503 and ``Retry-After``. Replaying the whole request is safe: the
failed attempt's transaction was rolled back, so it left nothing behind. A middleware does it
rather than each route, so routes added later are covered too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from service.interfaces.api.security import Receive, Scope, Send

log = logging.getLogger(__name__)

#: SQLSTATEs of PostgreSQL errors that a retry can cure: lock_not_available (lock_timeout),
#: serialization_failure, deadlock_detected.
RETRYABLE_SQLSTATES = frozenset({"55P03", "40001", "40P01"})
#: Internal header that marks a 503 the middleware may retry (removed before it leaves).
RETRY_MARK = b"x-paretonas-db-busy"
FIRST_DELAY_S, MAX_DELAY_S = 0.05, 1.0


def is_contention(exc: BaseException) -> bool:
    """True for "the database is busy, try again" (not for unreachable or broken ones)."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    text = str(orig).lower()
    return type(orig).__module__.startswith("sqlite3") and (
        "locked" in text or "busy" in text)


def retry_after_s(retry_seconds: float) -> int:
    return max(1, math.ceil(retry_seconds))


def install(app, *, retry_seconds: float) -> None:
    """Register the 503 handler and the retrying middleware on ``app``."""

    @app.exception_handler(DBAPIError)
    def _database_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        headers = {"Retry-After": str(retry_after_s(retry_seconds))}
        if is_contention(exc):
            headers[RETRY_MARK.decode()] = "1"
            detail = (f"the database is busy (another writer holds a lock) and stayed busy "
                      f"for {retry_seconds:g} s; try again later")
        elif isinstance(exc, OperationalError | InterfaceError) and (
                exc.connection_invalidated or "connect" in str(exc.orig).lower()):
            detail = "the database is unreachable; try again later"
        else:
            raise exc  # a bug, not the weather: let it be a 500 with its traceback logged
        log.warning("answering 503: %s", exc.orig)
        return JSONResponse(status_code=503, content={"detail": detail}, headers=headers)

    app.add_middleware(ContentionRetry, retry_seconds=retry_seconds)


class ContentionRetry:
    """ASGI middleware: replay a request whose answer is a retryable 503, with back-off."""

    def __init__(self, app, *, retry_seconds: float):
        self.app = app
        self.retry_seconds = retry_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body, disconnected = await _read_body(receive)
        if disconnected:
            return
        deadline = time.monotonic() + self.retry_seconds
        delay = FIRST_DELAY_S
        while True:
            busy = await self._attempt(scope, body, receive, send,
                                       final=time.monotonic() >= deadline)
            if not busy:
                return
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, MAX_DELAY_S)

    async def _attempt(self, scope: Scope, body: bytes, receive: Receive, send: Send, *,
                       final: bool) -> bool:
        """Run the app once; True if it answered a retryable 503 that was held back."""
        replayed = False
        held = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the client to leave

        async def forward(message: dict) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                marked = any(k == RETRY_MARK for k, _ in message.get("headers", []))
                if marked:
                    message = {**message, "headers": [
                        (k, v) for k, v in message["headers"] if k != RETRY_MARK]}
                    held = not final
            if not held:
                await send(message)

        await self.app(scope, replay, forward)
        return held


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole request body (its size is capped by the security middleware outside)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False
