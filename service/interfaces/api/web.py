"""Routes of the web viewer: the pages at ``/``, ``/studies/{id}``, ``/compare`` and their assets,
plus the columnar ``/api/v1/studies/{id}/points`` the study page plots from (``points.py``).

The pages are static HTML + ES modules under ``service/interfaces/web``; they read everything from
the REST API. Plotly is served from the installed ``plotly`` Python package (no CDN, no copy in
the repo).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse

from service.interfaces.api import points

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC_DIR = WEB_DIR / "static"
_TYPES = {
    ".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml",
}
# Our own assets change with the code: let browsers revalidate. Plotly is versioned: cache a day.
_NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter()
router.include_router(points.router, prefix="/api/v1")


def _page(name: str) -> FileResponse:
    return FileResponse(WEB_DIR / name, media_type="text/html", headers=_NO_CACHE)


@router.get("/", include_in_schema=False)
def studies_page() -> FileResponse:
    return _page("index.html")


@router.get("/studies/{study_id}", include_in_schema=False)
def study_page(study_id: int) -> FileResponse:
    return _page("study.html")


@router.get("/compare", include_in_schema=False)
def compare_page() -> FileResponse:
    return _page("compare.html")


VENDORED_PLOTLY = Path(__file__).resolve().parents[1] / "web" / "vendor" / "plotly-gl2d.min.js"


class _Bundle:
    """The plotly.js bundle, read once, with its gzip form and an ETag."""

    def __init__(self, raw: bytes, version: str):
        self.raw = raw
        self.gz = gzip.compress(raw, compresslevel=6)
        self.etag = '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
        self.version = version


@lru_cache(maxsize=1)
def _plotly_bundle() -> _Bundle:
    # Prefer the partial bundle `make install` fetches from npm (scatter + scattergl: all the
    # viewer draws; 1.6 MB instead of 4.8 MB, which halves a cold page's script compile time).
    override = os.environ.get("PARETONAS_PLOTLY_JS")
    for path, version in ((override, "custom"), (str(VENDORED_PLOTLY), "gl2d")):
        if path and Path(path).is_file():
            return _Bundle(Path(path).read_bytes(), version)
    try:
        import plotly

        source = resources.files("plotly") / "package_data" / "plotly.min.js"
        return _Bundle(source.read_bytes(), plotly.__version__)
    except (ImportError, FileNotFoundError, OSError) as exc:
        log.error("plotly.js bundle not found: %s", exc)
        raise HTTPException(
            503, "plotly.min.js is missing from the installed 'plotly' package; reinstall plotly"
        ) from exc


def _warm_bundle() -> None:
    try:
        _plotly_bundle()
    except HTTPException:
        pass  # logged; answered with a 503 when the script is requested


# Read and compress plotly.js (~0.4 s of CPU) in the background when the app is built, so that
# the first page view does not wait for it.
threading.Thread(target=_warm_bundle, daemon=True, name="plotly-gzip").start()


@router.get("/static/vendor/plotly.min.js", include_in_schema=False)
def plotly_js(request: Request) -> Response:
    bundle = _plotly_bundle()
    headers = {"ETag": bundle.etag, "Cache-Control": "public, max-age=86400", "Vary":
               "Accept-Encoding"}
    if request.headers.get("if-none-match") == bundle.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(bundle.gz, media_type="text/javascript",
                        headers={**headers, "Content-Encoding": "gzip"})
    return Response(bundle.raw, media_type="text/javascript", headers=headers)


@router.get("/static/{name}", include_in_schema=False)
def static_asset(name: str) -> FileResponse:
    """One flat file of ``service/interfaces/web/static`` (no sub-folders, so no path tricks)."""
    path = STATIC_DIR / name
    if "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
        raise HTTPException(404, f"no viewer asset named {name!r}")
    media = _TYPES.get(path.suffix)
    if media is None:
        raise HTTPException(404, f"no viewer asset named {name!r}")
    return FileResponse(path, media_type=media, headers=_NO_CACHE)
