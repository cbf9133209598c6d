# riotvit: two commands do all the setup on a fresh machine.
#   make demo   set up, then run the pipeline on the embedded synthetic city
#   make test   set up (Python env, and QGIS when it can be installed), then run the tests

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RIOTVIT := $(VENV)/bin/riotvit
STAMP := $(VENV)/.installed
OUT ?= runs/demo

.PHONY: install demo test qgis bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(RIOTVIT) demo --out $(OUT)

# QGIS is the client: install python3-qgis when we can (root + apt), otherwise its tests skip.
qgis:
	@if QT_QPA_PLATFORM=offscreen /usr/bin/python3 -c "import qgis.core" 2>/dev/null; then \
		echo "QGIS present: $$(/usr/bin/python3 -c 'from qgis.core import Qgis; print(Qgis.QGIS_VERSION)' 2>/dev/null)"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "installing QGIS (python3-qgis) for the tests that open outputs in QGIS"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-qgis qgis-providers >/dev/null; \
	else echo "QGIS not installed and cannot be installed here: tests marked qgis will skip"; fi

test: $(STAMP) qgis
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/bench_tile.py
	$(PY) bench/bench_acled.py
	$(PY) bench/bench_census.py
	$(PY) bench/bench_join.py
	$(PY) bench/bench_train.py
	$(PY) bench/bench_predict.py
	$(PY) bench/bench_explain.py

lint: $(STAMP)
	$(VENV)/bin/ruff check riotvit tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache
