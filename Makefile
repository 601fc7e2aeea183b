# ParetoNAS developer commands. `make install` once; the others assume the venv exists.
PY ?= .venv/bin/python
PIP ?= .venv/bin/pip
PORT ?= 8765

PLOTLY_GL2D ?= plotly.js-gl2d-dist-min@3.7.0
VENDOR := service/interfaces/web/vendor

.PHONY: install vendor demo demo-table test test-fast serve bench lint

install: vendor
	test -d .venv || python3 -m venv .venv
	$(PIP) install -q -U pip
	$(PIP) install -q -e '.[dev]'

# The viewer's plotting library: npm's partial plotly bundle (scatter + scattergl, 1.6 MB) when
# npm can fetch it, else the full plotly.js of the `plotly` Python package is served instead.
vendor:
	@mkdir -p $(VENDOR)
	@test -f $(VENDOR)/plotly-gl2d.min.js || ( \
	  tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent $(PLOTLY_GL2D) >/dev/null 2>&1 && \
	  tar xzf *.tgz package/plotly-gl2d.min.js package/LICENSE && \
	  mv package/plotly-gl2d.min.js $(CURDIR)/$(VENDOR)/ && \
	  mv package/LICENSE $(CURDIR)/$(VENDOR)/LICENSE.plotly && rm -rf $$tmp \
	) || echo "npm could not fetch $(PLOTLY_GL2D): the viewer will serve the full plotly.js"

# FMAS flow: synthetic VOC -> small DeepLabV3+ supernet (trained once, cached in .paretonas/) ->
# the service (SQLite, a local worker) runs mIoU vs CPU/GAP8 latency, fine-tunes the front.
demo:
	$(PY) -m service.interfaces.demos.deeplab --port $(PORT)

# The table-space demo (digits MLPs), seconds instead of minutes.
demo-table:
	$(PY) -m service.interfaces.demos.table --port $(PORT)

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
