# The two commands of the README: `make run` (the platform) and `make test` (the test suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run run-affine test lint bench bench-tenants chaos clean-db lifecycle

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || (echo "Python 3.11+ required" && exit 1)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(PY) tools/run_platform.py

# the web tier as HAProxy on PORT in front of GROUPS gunicorn groups, each tenant hashed to one group
# (docs/scaling.md, "Tenant-affine routing"); installs Debian's haproxy when missing (as root)
GROUPS ?= 2
run-affine: $(VENV)/.installed
	$(PY) tools/run_affine.py --groups $(GROUPS)

test: $(VENV)/.installed
	$(PY) tools/run_tests.py $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) tools/check_commits.py

bench: $(VENV)/.installed
	BEFORE=$(BEFORE) $(PY) -m bench all

# provisioning time and tools/call latency with 1,000 tenants (tens of minutes;
# the tenants stay for the next run, ARGS="--reset" drops them first, ARGS="--migrate" times migrate_schemas)
bench-tenants: $(VENV)/.installed
	$(PY) -m bench tenants-scale $(ARGS)

# the whole auth lifecycle against a running platform (default: the one `make run` started)
lifecycle: $(VENV)/.installed
	$(PY) manage.py auth_lifecycle_test --base-url $${BASE_URL:-http://127.0.0.1:$${PORT:-8000}}

# the lifecycle jobs under faults: its own PostgreSQL and redis-server; not in CI
chaos: $(VENV)/.installed
	$(PY) tools/chaos.py
