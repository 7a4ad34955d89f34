# Every target installs what it needs into .venv first; the stamp makes that idempotent.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The pair must be pinned together: see README, "Why torch is pinned".
PINS   := torch==2.13.0 torchvision==0.28.0
OUT    ?= out

.PHONY: demo test bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PINS) -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m reference demo --out $(OUT)/reference

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
