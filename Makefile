# ParetoNAS developer commands. `make install` once; the others assume the venv exists.
PY ?= .venv/bin/python
PIP ?= .venv/bin/pip
PORT ?= 8765

.PHONY: install demo demo-table test test-fast serve bench lint

install:
	test -d .venv || python3 -m venv .venv
	$(PIP) install -q -U pip
	$(PIP) install -q -e '.[dev]'

# FMAS flow: synthetic VOC -> small DeepLabV3+ supernet (trained once, cached in .paretonas/) ->
# the service (SQLite, a local worker) runs mIoU vs CPU/GAP8 latency, fine-tunes the front.
demo:
	$(PY) -m service.demo_deeplab --port $(PORT)

# The table-space demo (digits MLPs), seconds instead of minutes.
demo-table:
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
