"""Health and the registries (search spaces, strategies) with their option schemas."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from search_spaces import SPACES
from search_spaces.ranking import rank_correlation
from service import __version__
from service.engine.strategies import STRATEGIES
from service.interfaces.api.deps import SessionDep
from service.interfaces.api.schemas import Health, OptionsSchema, RegistryPublic

router = APIRouter(tags=["meta"])


@router.get("/health", response_model=Health)
def health(session: SessionDep) -> Health:
    session.execute(text("SELECT 1"))
    return Health(status="ok", database=session.get_bind().dialect.name, version=__version__)


def _describe(registry, extra=None) -> RegistryPublic:
    data = []
    for name in registry.names():
        cls = registry.get(name)
        doc = (getattr(cls, "doc", "") or (cls.__doc__ or "")).strip().split("\n")[0]
        data.append(OptionsSchema(name=name, doc=doc,
                                  options_schema=cls.Options.model_json_schema(),
                                  **(extra(name) if extra else {})))
    return RegistryPublic(data=data)


@router.get("/search-spaces", response_model=RegistryPublic)
def search_spaces() -> RegistryPublic:
    """The spaces and their options; supernet spaces also give ``rank_correlation``: Kendall
    tau of inherited-weight accuracy vs accuracy after training, measured on the bench-scale
    supernets by ``bench/weight_sharing.py --full`` (null where not measured)."""
    return _describe(SPACES, lambda name: {"rank_correlation": rank_correlation(name)})


@router.get("/strategies", response_model=RegistryPublic)
def strategies() -> RegistryPublic:
    return _describe(STRATEGIES)
