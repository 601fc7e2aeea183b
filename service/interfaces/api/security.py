"""API keys on write endpoints, a request-body size limit, and the listen-address guard.

* Keys: when ``PARETONAS_API_KEYS`` is set, every request that can change state (any method but
  GET/HEAD/OPTIONS) needs ``Authorization: Bearer <key>``; reads stay open so the viewer and
  dashboards work. Keys are compared in constant time. A middleware rather than per-route
  dependencies, so a write route added later cannot forget it.
* Body size: bodies over ``PARETONAS_MAX_BODY_BYTES`` are refused with 413, by Content-Length
  before reading and by counting for chunked bodies, so a client cannot make the server buffer
  gigabytes of JSON.
* Listening: ``check_listen_address`` refuses a non-loopback host without keys unless the
  operator says so (``--insecure`` / ``PARETONAS_ALLOW_INSECURE=1``).

Budgets are limited by ``max_trials``/``max_seconds`` at submission
(``service.interfaces.api.studies``);
data paths by ``search_spaces.paths`` (resolved under the data roots); devices accept no command
lines over the API (``evaluators.profilers.devices``).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, Iterable

from service.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class InsecureListenError(ValueError):
    """The server was asked to listen beyond this machine without API keys."""


def key_matches(presented: str, keys: Iterable[str]) -> bool:
    """Constant-time comparison against every configured key (no early exit on a match)."""
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(presented.encode(), key.encode())
    return ok


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


async def _reply(send: Send, status: int, detail: str, headers: list | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class SecurityMiddleware:
    """ASGI middleware: API keys on writes, body size limit."""

    def __init__(self, app, *, settings: Settings):
        self.app = app
        self.keys = list(settings.api_keys)
        self.max_body = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        if self.keys and scope["method"] not in SAFE_METHODS:
            token = bearer_token(headers)
            if token is None or not key_matches(token, self.keys):
                await _reply(send, 401, "this endpoint needs 'Authorization: Bearer <API key>' "
                             "with a key configured in PARETONAS_API_KEYS",
                             [(b"www-authenticate", b"Bearer")])
                return
        length = next((v for k, v in headers if k.lower() == b"content-length"), None)
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                await _reply(send, 400, "Content-Length is not a number")
                return
            if too_big:
                await _reply(send, 413, f"request body of {int(length)} bytes exceeds this "
                             f"server's limit of {self.max_body} bytes")
                return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count body bytes as the app reads them; past the limit, answer 413 ourselves and
        tell the app the client left (it would turn any exception into a 400)."""
        seen = 0
        started = refused = False

        async def counting_receive() -> dict:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body and not started:
                    refused = True
                    await _reply(send, 413, f"request body exceeds this server's limit of "
                                 f"{self.max_body} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if refused:
                return  # we already answered
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, tracking_send)


def is_loopback(host: str) -> bool:
    """True for addresses that only this machine can reach (``localhost``, 127/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:  # a host name: loopback only if every address it resolves to is
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_listen_address(host: str, settings: Settings, *, insecure: bool = False) -> None:
    """Raise ``InsecureListenError`` for a reachable address without keys, unless allowed."""
    if settings.api_keys or insecure or settings.allow_insecure or is_loopback(host):
        return
    raise InsecureListenError(
        f"refusing to listen on {host!r} without API keys: anyone who can reach it could "
        "submit studies. Set PARETONAS_API_KEYS, listen on 127.0.0.1, or pass --insecure "
        "(PARETONAS_ALLOW_INSECURE=1) if a proxy in front handles authentication"
    )


def install(app, settings: Settings) -> None:
    """Add the security middleware; with keys, declare the bearer scheme on every write
    operation of the OpenAPI schema (so /docs offers "Authorize" and clients know)."""
    app.add_middleware(SecurityMiddleware, settings=settings)
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        for ops in schema.get("paths", {}).values():
            for method, op in ops.items():
                if method.upper() in SAFE_METHODS:
                    continue
                responses = op.setdefault("responses", {})
                responses.setdefault("413", {"description": "request body over the limit"})
                if settings.api_keys:
                    op["security"] = [{"bearer": []}]
                    responses.setdefault("401", {"description": "missing or unknown API key"})
        if settings.api_keys:
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http", "scheme": "bearer",
                "description": "a key from the server's PARETONAS_API_KEYS"}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
