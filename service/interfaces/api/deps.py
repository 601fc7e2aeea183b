"""FastAPI dependencies: the database session and the settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from sqlalchemy.orm import Session

from service.persistence.db import Database
from service.persistence.models import Study
from service.settings import Settings


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.db.session() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[Session, Depends(get_session)]
#: Database integers are 64-bit: a larger id or offset is a 422, not an overflow in the driver.
MAX_DB_INT = 2**63 - 1
StudyId = Annotated[int, Path(ge=-MAX_DB_INT - 1, le=MAX_DB_INT, description="study id")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_study_or_404(session: Session, study_id: int) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise HTTPException(status_code=404, detail=f"study {study_id} not found")
    return study
