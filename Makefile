# Two commands on a fresh machine:
#   make demo   serve the main demo (offline scripted model, no API key) on http://127.0.0.1:5006/agent_chat
#   make test   lint, then every test on Python 3.12 with the newest Panel and on
#               Python 3.11 with the oldest supported versions (.ci/min-versions.txt)

PY312 ?= $(shell PYENV_VERSION=3.12.1 pyenv which python3 2>/dev/null || command -v python3.12)
PY311 ?= $(shell PYENV_VERSION=3.11.7 pyenv which python3 2>/dev/null || command -v python3.11)
PORT ?= 5006
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: demo test test-latest test-oldest lint format bench browser clean

demo: .venv/installed
	.venv/bin/panel serve examples/agent_chat.py --address 127.0.0.1 --port $(PORT) \
		--allow-websocket-origin=127.0.0.1:$(PORT) --allow-websocket-origin=localhost:$(PORT)

test: lint test-latest test-oldest

lint: .venv/installed
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: .venv/installed
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

test-latest: .venv/installed browser
	.venv/bin/python -m pytest

test-oldest: .venv311/installed browser
	.venv311/bin/python -m pytest

bench: .venv/installed browser
	.venv/bin/python -m benchmarks

# Debian's Chromium for the browser tests (Playwright never downloads a browser here).
browser:
	@test -x /usr/bin/chromium || { \
		SUDO=$$(test "$$(id -u)" -eq 0 || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

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
	rm -rf .venv .venv311 .pytest_cache .ruff_cache .hypothesis
