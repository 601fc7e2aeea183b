"""The FastAPI application factory."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from paretonas_core.registry import UnknownNameError
from service import __version__
from service.engine.resolve import SpecError
from service.engine.safe_values import printable
from service.interfaces.api import contention, devices, meta, security, studies
from service.persistence.db import Database
from service.persistence.devices import load_catalog
from service.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="ParetoNAS", version=__version__,
        description="Multi-objective neural-architecture search: submit studies, read fronts.",
    )
    app.state.settings = settings
    app.state.db = db or Database(settings.database_url,
                                  lock_timeout_s=settings.db_lock_timeout_seconds)
    # defaults + config file + API-registered devices, read per request (devices can be added)
    app.state.device_catalog = partial(load_catalog, app.state.db, settings)
    load_catalog(None, settings)  # a broken config file stops the server at start, not later

    @app.exception_handler(RequestValidationError)
    def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes each bad input as it came: a NaN or a lone surrogate
        # there made the 422 itself fail (500); ``printable`` makes any echo encodable
        return JSONResponse(status_code=422,
                            content={"detail": printable(jsonable_encoder(exc.errors()))})

    @app.exception_handler(SpecError)
    def _spec_error(_request: Request, exc: SpecError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": exc.errors})

    @app.exception_handler(UnknownNameError)
    def _unknown_name(_request: Request, exc: UnknownNameError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    app.include_router(meta.router, prefix="/api/v1")
    app.include_router(studies.router, prefix="/api/v1")
    app.include_router(devices.router, prefix="/api/v1")
    from service.interfaces.api import (
        web,  # the viewer: pages at /, assets, /api/v1/studies/{id}/points
    )

    app.include_router(web.router)
    contention.install(app, retry_seconds=settings.write_retry_seconds)  # inside security
    security.install(app, settings)  # API keys on writes, body size limit
    return app
