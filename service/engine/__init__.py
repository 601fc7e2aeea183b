"""The engine: a study's spec and its resolution against the registries, the study loop
(``StudyRunner``) and its executors, two-stage search, fronts, evaluation and fine-tuning, and the
analyses of finished trials. It imports neither persistence nor SQLAlchemy (tests/test_layers.py).
"""
