# ParetoNAS developer commands. `make install` once; the others assume the venv exists.
PY ?= .venv/bin/python
PIP ?= .venv/bin/pip
PORT ?= 8765

.PHONY: install demo test test-fast serve bench lint

install:
	test -d .venv || python3 -m venv .venv
	$(PIP) install -q -U pip
	$(PIP) install -q -e '.[dev]'

# Starts the service (SQLite, local workers), submits a real study, follows it, prints the front.
demo:
	$(PY) -m service.demo --port $(PORT)

test:
	$(PY) -m pytest -q -m "not slow" tests

test-fast:
	$(PY) -m pytest -q -m "not slow and not browser" tests

serve:
	.venv/bin/paretonas serve --workers 2 --port $(PORT)

bench:
	@for script in bench/*.py; do \
	  case $$script in bench/make_*) continue;; esac; \
	  echo "== $$script"; $(PY) $$script || exit 1; \
	done

lint:
	.venv/bin/ruff check .
