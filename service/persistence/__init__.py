"""Persistence: the database (SQLAlchemy, Alembic migrations) and its tables, the study queue,
the database ``TrialStore``, the measurement cache and the device catalog. It may import the
engine (it implements the engine's protocols), never the interfaces."""
