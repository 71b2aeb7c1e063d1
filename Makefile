# leakscan: `make run` audits the bundled fixtures, `make test` runs the test suite.
# Both create .venv and install leakscan into it first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench venv clean screenshot

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/leakscan audit fixtures --out out/fixtures --force

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis build *.egg-info

# The README's report screenshot: audit fixtures/, render report.html in headless Chromium.
screenshot: $(STAMP)
	$(BIN)/leakscan audit fixtures --out out/fixtures --force --quiet
	chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
	  --hide-scrollbars --window-size=1280,1500 --screenshot=docs/report.png "file://$(CURDIR)/out/fixtures/report.html"
