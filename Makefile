# Two commands on a fresh machine:
#   make demo   serve the main demo (offline scripted model, no API key) on http://127.0.0.1:5006/agent_chat
#   make test   lint, the docs site, then every test on Python 3.12 with the newest Panel
#               and on Python 3.11 with the oldest supported versions (.ci/min-versions.txt);
#               every part runs whatever another part did, and a summary says which failed

PY312 ?= $(shell PYENV_VERSION=3.12.1 pyenv which python3 2>/dev/null || command -v python3.12)
PY311 ?= $(shell PYENV_VERSION=3.11.7 pyenv which python3 2>/dev/null || command -v python3.11)
PORT ?= 5006
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: demo test test-latest test-oldest lint docs docs-serve format bench browser postgres clean

demo: .venv/installed
	.venv/bin/panel serve examples/agent_chat.py --address 127.0.0.1 --port $(PORT) \
		--allow-websocket-origin=127.0.0.1:$(PORT) --allow-websocket-origin=localhost:$(PORT)

# Each part runs even when an earlier one failed (a 3.12 failure must not hide the 3.11
# results); the summary lists each part, and the exit status is non-zero if any failed.
TEST_PARTS = lint docs test-latest test-oldest
test:
	@summary=""; failed=""; \
	for part in $(TEST_PARTS); do \
		start=$$(date +%s); \
		if $(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) $$part; then result=passed; else result=FAILED; failed="$$failed $$part"; fi; \
		summary="$$summary  $$part: $$result in $$(( $$(date +%s) - start )) s\n"; \
	done; \
	printf "\nmake test summary:\n$$summary"; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi; echo "all passed"

lint: .venv/installed
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

# The documentation site (MkDocs Material, API reference from the docstrings); warnings are errors.
docs: .venv/installed
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir site

docs-serve: .venv/installed
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs serve --dev-addr 127.0.0.1:8000

format: .venv/installed
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

test-latest: .venv/installed browser postgres
	.venv/bin/python -m pytest

test-oldest: .venv311/installed browser postgres
	.venv311/bin/python -m pytest

bench: .venv/installed browser
	.venv/bin/python -m benchmarks

# Debian's Chromium for the browser tests (Playwright never downloads a browser here).
browser:
	@test -x /usr/bin/chromium || { \
		SUDO=$$(test "$$(id -u)" -eq 0 || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

# Debian's Postgres server for the trace store's tests (the tests start and stop it themselves).
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
		SUDO=$$(test "$$(id -u)" -eq 0 || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

.venv/installed: pyproject.toml
	@test -n "$(PY312)" || { echo "Python 3.12 not found: set PY312=/path/to/python3.12"; exit 1; }
	$(PY312) -m venv .venv
	.venv/bin/pip install $(PIP_FLAGS) --upgrade pip
	.venv/bin/pip install $(PIP_FLAGS) --upgrade -e ".[dev]"
	touch $@

.venv311/installed: pyproject.toml .ci/min-versions.txt
	@test -n "$(PY311)" || { echo "Python 3.11 not found: set PY311=/path/to/python3.11"; exit 1; }
	$(PY311) -m venv .venv311
	.venv311/bin/pip install $(PIP_FLAGS) --upgrade pip
	.venv311/bin/pip install $(PIP_FLAGS) -c .ci/min-versions.txt -e ".[test]"
	touch $@

clean:
	rm -rf .venv .venv311 .pytest_cache .ruff_cache .hypothesis site
