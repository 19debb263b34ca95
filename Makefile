# Two entry points: `make demo` (synthetic data, CPU) and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CORES ?= 2
# The demo runs on CPU: instead of the profile's one network job at a time (gpu: 1), one per core,
# each on one thread (demo.yaml train.threads: a second thread speeds the demo's small B0 by ~15 %,
# a second job nearly doubles the work done).
DEMO := --configfile config/demo.yaml --cores $(CORES) --resources gpu=$(CORES)

# `make check`, the inner loop (within 3 minutes on 2 cores): lint and the unit tests that build no
# network and start no workflow (each file measured; test_synthetic, test_figures and every file
# that trains, predicts or runs snakemake stay in `make test`).
FAST_TESTS := $(addprefix tests/test_,$(addsuffix .py,architecture atomic comparisons config_layers \
	experiment metrics schema selection shards summary acquire predict_records readme cutouts targets))

.PHONY: install demo test check lint bench clean

# pip --no-compile, then bytecode on every core: pip compiles the packages' modules on one
# (about a minute of the install, measured), and without .pyc files each process compiles
# TensorFlow again (an import 11 s -> 24 s where PYTHONDONTWRITEBYTECODE is set). A module
# written for a newer Python does not compile, and pip skips it too: torch's own tests hold one
# (left out here); on Python 3.10 others may, so those are listed, not fatal.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e '.[dev,parity]'
	$(BIN)/pip install --quiet --no-compile --no-deps timm==1.0.29  # parity test; see pyproject
	$(BIN)/python -m compileall -q -j 0 -x 'torch/testing/_internal/py312_intrinsics\.py' \
		$(VENV)/lib || echo "the modules above do not compile on this Python; pip skips them too"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake $(DEMO)
	$(MAKE) --no-print-directory results/report.html
	$(BIN)/spiralarms summary results/summary/metrics.csv --data synthetic

results/report.html: results/summary/metrics.csv
	$(BIN)/snakemake $(DEMO) --report $@

# One worker per core, at most 4 (the long modules set the pace beyond that); tests/conftest.py
# keeps each module on one worker and hands out the long ones first.
test: $(STAMP)
	$(BIN)/pytest --numprocesses auto --maxprocesses 4 --dist loadgroup --no-loadscope-reorder

check: lint
	$(BIN)/pytest -m "not slow" -p no:cacheprovider $(FAST_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench workflow/scripts
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --configfile config/demo.yaml

bench: $(STAMP)
	for script in bench/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf results .snakemake
