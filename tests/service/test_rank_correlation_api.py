"""GET /api/v1/search-spaces gives each supernet space's measured rank correlation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from search_spaces.ranking import rank_correlation
from service.interfaces.api.app import create_app
from service.settings import Settings


def test_search_spaces_report_rank_correlation(database_url, data_dir):
    app = create_app(Settings(database_url=database_url))
    try:
        spaces = {s["name"]: s for s in
                  TestClient(app).get("/api/v1/search-spaces").json()["data"]}
    finally:
        app.state.db.dispose()
    assert spaces["table"]["rank_correlation"] is None  # no weight sharing: nothing to rank
    for name in ("deeplabv3plus", "randlanet", "bert"):
        assert spaces[name]["rank_correlation"] == rank_correlation(name), name
        assert spaces[name]["rank_correlation"]["kendall_tau"] is not None, name
