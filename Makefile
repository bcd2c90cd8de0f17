# churnkit — one entry point per habit. `make demo` and `make test` are the quick start.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_WS ?= .demo-workspace
ROWS ?= 1000000
CUSTOMERS ?= 100000
QUALITY_CUSTOMERS ?= 4000
ARGS ?=
CK := $(BIN)/churnkit --workspace $(DEMO_WS) --config configs/sample.yaml --no-progress

.DEFAULT_GOAL := help
.PHONY: help install demo test pytest lint format bench bench-quality fixtures clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install churnkit with its dev tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install ## run the pipeline on sample_data/ in a fresh workspace
	rm -rf $(DEMO_WS)
	$(CK) ingest sample_data/transactions.csv --relations sample_data/relations.csv
	$(CK) ingest sample_data/usage.csv.gz --kind usage
	$(CK) train
	$(CK) --quiet train --as-of 2026-07-18 --model backtest
	@# A back-test of a model trained three months earlier: its gates may fail, and then
	@# evaluate exits 1, as a CI job would see it; the demo goes on.
	$(CK) evaluate --model backtest || echo "(evaluate exited $$?: a quality gate failed)"
	@# The campaign loop: a plan made at that date with a control group, measured against
	@# what happened next. Nothing was done to the sample's customers, so the interval of
	@# the uplift should hold 0.
	$(CK) --quiet predict --as-of 2026-07-18 --model backtest --out $(DEMO_WS)/predictions-july.parquet
	$(CK) --quiet report --predictions $(DEMO_WS)/predictions-july.parquet --budget 1500 --control-share 0.3 --save-campaign july
	$(CK) measure july
	$(CK) segment --health
	$(CK) predict
	$(CK) report --format html --out $(DEMO_WS)/reports/report.html
	$(CK) report --budget 2000 --control-share 0.1
	@echo "HTML report: $(DEMO_WS)/reports/report.html"

test: install lint pytest ## lint, then the whole test suite (what CI runs)

pytest: install ## the test suite alone (make pytest ARGS='-k ingest')
	$(BIN)/pytest -q $(ARGS)

lint: install ## ruff, formatting check, mypy and the import layers
	$(BIN)/ruff check churnkit tests bench
	$(BIN)/ruff format --check churnkit tests bench
	$(BIN)/mypy churnkit
	$(BIN)/lint-imports

format: install ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix churnkit tests bench
	$(BIN)/ruff format churnkit tests bench

bench: install ## benchmarks on generated data (ROWS=1000000); prints ratios
	$(BIN)/python bench/bench_ingest.py --rows $(ROWS)
	$(BIN)/python bench/bench_features.py --customers $(CUSTOMERS)

fixtures: install ## rewrite the export corpus in tests/fixtures/exports (seeded)
	$(BIN)/python tests/fixtures/exports/make_corpus.py

bench-quality: install ## validation AUC vs naive and BG/NBD baselines per sample profile
	$(BIN)/python bench/bench_quality.py --customers $(QUALITY_CUSTOMERS)

clean: ## remove the venv, caches and demo workspaces
	rm -rf $(VENV) $(DEMO_WS) .churnkit .pytest_cache .ruff_cache .mypy_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
