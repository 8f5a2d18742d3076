# stackyard — run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := demo

.DEFAULT_GOAL := help

help: ## Show this help.
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11+) on PATH; or run: make PYTHON=python3 ..."; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,prefect,dagster,spark]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install stackyard with its dev tools (pinned by constraints.txt).

demo: $(STAMP) ## Create the example project in ./demo (replacing any there) and run it end to end on DuckDB.
	@rm -rf $(DEMO)
	$(BIN)/stackyard init $(DEMO) --example jaffle_shop
	$(BIN)/stackyard run --project $(DEMO)
	@$(BIN)/stackyard status --project $(DEMO) --limit 3
	@echo
	@echo "Next, look at:"
	@echo "  $(BIN)/stackyard sql --project $(DEMO) \"select * from reporting.rpt_daily_revenue order by revenue desc limit 5\""
	@echo "  $(BIN)/stackyard status --project $(DEMO)            # run history, kept in the warehouse"
	@echo "  $(BIN)/stackyard health --project $(DEMO)            # every table the monitors watch"
	@echo "  $(BIN)/stackyard report --project $(DEMO) --out $(DEMO)/report.html   # open it in a browser"
	@echo "  $(BIN)/stackyard plan --project $(DEMO)              # the access layout it would create"
	@echo "  $(DEMO)/stackyard.yml (sources, targets) and $(DEMO)/transform/models (the dbt project)"
	@echo "(make demo starts ./$(DEMO) afresh each time: copy it elsewhere to keep your edits)"

lint: $(STAMP) ## ruff (lint + format check) and mypy.
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP) ## Format the code with ruff.
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: $(STAMP) browser ## Lint, then run the whole test suite (needs the local Postgres and MariaDB).
	$(MAKE) lint
	$(BIN)/pytest -n 3 --dist loadfile --no-loadscope-reorder

# The HTML report's browser tests need headless Chromium. On Debian it is installed when
# missing (as root, or with sudo); elsewhere the message says what to install.
browser: ## Install headless Chromium for the browser tests when it is missing (Debian).
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    echo "installing chromium for the browser tests (apt-get)"; \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "need headless Chromium on PATH for the browser tests (e.g. apt-get install chromium)"; exit 2; \
	  fi; }

bench: $(STAMP) ## Run the benchmarks in bench/ (writes bench/results/*.md).
	$(BIN)/python bench/run_all.py

clean: ## Remove the virtualenv, caches and the demo project.
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install demo lint format test browser bench clean
