# tickerwire: the two commands of the README are `make run` and `make test`.
SHELL := /bin/bash
UV := python3 -m uv
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1

.PHONY: setup run test lint typecheck unit bench clean

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.9"
	$(UV) sync --frozen --extra plot

## The main job on the embedded default: Kafka, the all-in-one worker, the sample feed, a search.
run: setup
	bash deploy/run-demo.sh

lint:
	.venv/bin/ruff check services tests bench deploy/grafana
	.venv/bin/ruff format --check services tests bench deploy/grafana
	.venv/bin/lint-imports
	@if command -v docker-compose >/dev/null; then docker-compose config -q && echo "docker-compose.yml: valid"; \
	  else echo "docker-compose not installed: compose file not validated"; fi

typecheck:
	.venv/bin/mypy
	.venv/bin/mypy --strict bench/*.py
	.venv/bin/mypy --strict deploy/grafana/dashboards.py

## Everything CI runs: install, lint, types, and the whole test suite against a real broker.
test: setup lint typecheck
	.venv/bin/pytest -q

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf .tickerwire .pytest_cache .mypy_cache .ruff_cache
