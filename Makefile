# The README's commands. `make run` and `make test` work on a fresh machine:
# they install what they need first (CPU torch before anything else).
PY ?= python3
PIP := $(PY) -m pip
INDEX_DIR ?= index
SAMPLES := samples/articles

.PHONY: install browser run ask test test-all lint format bench screenshots clean-index

# torch==2.13.0 is the CPU build on this machine's disk; asked for first so
# sentence-transformers never pulls the multi-GB CUDA build.
install: .installed
.installed: pyproject.toml
	$(PIP) install --quiet --disable-pip-version-check torch==2.13.0
	$(PIP) install --quiet --disable-pip-version-check -e '.[dev]'
	@touch .installed

# Debian's Chromium for the browser tests (Playwright drives it, downloads nothing).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

run: install
	qa index $(SAMPLES) --index-dir $(INDEX_DIR)
	qa serve --index-dir $(INDEX_DIR)

ask: install
	qa index $(SAMPLES) --index-dir $(INDEX_DIR)
	qa ask "What is K-SPACE?" --index-dir $(INDEX_DIR)

lint: install
	ruff check .
	ruff format --check .

test: install browser lint
	$(PY) -m pytest

# Everything, slow suites included (BBC corpus, full fuzzing counts).
test-all: install browser lint
	$(PY) -m pytest -m ''

format:
	ruff check --fix .
	ruff format .

bench: install
	$(PY) bench/run_all.py

# Refresh the committed screenshots (tests otherwise write them to a scratch folder).
screenshots: install browser
	QA_SCREENSHOTS=bench/screenshots $(PY) -m pytest tests/test_browser.py -k screenshot

clean-index:
	rm -rf $(INDEX_DIR)/CURRENT $(INDEX_DIR)/LOCK $(INDEX_DIR)/versions $(INDEX_DIR)/encoder
