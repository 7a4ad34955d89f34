# Every target installs what it needs first; stamps make that idempotent.
# The venv's interpreter: of the Python 3.11 builds on the PATH, the fastest at a short loop of Python code. Debian's
# build ran the test suite a sixth faster than pyenv's (built without --enable-optimizations), kernels and all;
# PYTHON=... picks one by hand. Read once, when the venv is made.
SPEED  := import ensurepip, sys, timeit; assert sys.version_info[:2] == (3, 11); \
          print(min(timeit.repeat("sum(i % 7 for i in range(300000))", number=1, repeat=3)), sys.executable)
PYTHON ?= $(or $(shell for p in $$(which -a python3.11 python3 2>/dev/null); do $$p -c '$(SPEED)' 2>/dev/null; done \
                | sort -g | head -1 | cut -d" " -f2), $(shell command -v python3.11 || command -v python3))
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The pair must be pinned together: see README, "Why torch is pinned".
PINS   := torch==2.13.0 torchvision==0.28.0
# Not one file of these was read in a full `make test` (pyc access times): the grader never imports them, only what
# the packages it uses could (IPython's terminal, dask's arrays, sympy's physics, build tools). A fifth of the venv.
COLD   := jedi|parso|prompt_toolkit|pydantic|pydantic_core|kopf|pykube|narwhals|oauthlib|requests_oauthlib|fsspec|\
          aiohttp|aiohttp_retry|aiosignal|aiohappyeyeballs|yarl|multidict|frozenlist|propcache|wcwidth|markdown_it|\
          mdurl|partd|xyzservices|torchgen|functorch/dim|numpy/(distutils|f2py)|dask/(array|dataframe)|\
          sympy/(physics|stats|codegen|vector|liealgebras|parsing)|bokeh/(command|sampledata|sphinxext)|\
          fontTools/(ttLib|varLib|feaLib|ufoLib|pens)|matplotlib/testing|mpl_toolkits/axisartist|tornado/test|\
          trio/_tests
LEFT_AS_SOURCE := /site-packages/(kubernetes|kubernetes_asyncio|$(subst $(eval) ,,$(COLD)))/|/site-packages/.*/tests/
OUT    ?= out
# The cores, counted without OMP_NUM_THREADS: nproc honours it, and the targets below set it to 1 per process.
CORES  := $(shell env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 2)
WORKERS ?= $(CORES)
# Test files are spread over this many pytest processes; a file stays on one, so its fixtures are built once.
# They are handed out in collection order, which tests/conftest.py starts with the longest files. One more than the
# cores (at most 4): a process waiting on a kernel's time limit or a subprocess's start leaves its core to another
# (on 2 cores, 3 processes took 437 to 452 s in three runs, where 2 took 455 and 4 took 464).
TEST_WORKERS ?= $(shell n=$$(($(CORES) + 1)); [ $$n -gt 4 ] && n=4; echo $$n)

.PHONY: demo test bench bench-peers reference browser venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile $(PINS) -e '.[test]'
	@# Compiled here rather than by pip, which compiles on one core, every file it installs, and not an editable
	@# project: where PYTHONDONTWRITEBYTECODE is set, every grader process (the CLI, each worker, the factory) would
	@# compile what it imports at each start. Left as source: packages' own test suites, and the Kubernetes clients
	@# dask-kubernetes installs but whose operator (all the grader uses) never imports, a third of the venv's code.
	@# A file that does not compile here (torch ships a few in Python 3.12's syntax) stays source, as pip leaves it.
	$(PY) -m compileall -qq -j 0 -x '$(LEFT_AS_SOURCE)' $(VENV)/lib grader reference || true
	touch $(STAMP)

# The browser test needs Debian's Chromium and its driver; installed once, as root (as in CI).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "warning: chromium/chromedriver missing and cannot be installed here; the browser test will fail"; fi

# The main job: grade the bundled example class, write the gradebook, feedback pages and exports.
demo: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m grader.demo --out $(OUT)/demo --workers $(WORKERS)

# The course's own figures and the reference experiments (checkerboard; MNIST ones run by name).
reference: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m reference demo --out $(OUT)/reference

# The venv and the browser install side by side (pip and apt-get each keep about one core busy), then the tests run.
test:
	@$(MAKE) --no-print-directory -j2 $(STAMP) browser
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) bench/run_all.py

# The peers (nbgrader, otter-grader) live in their own venv, so their pins never touch ours.
PEERS_VENV  := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

$(PEERS_STAMP): bench/peers-requirements.txt
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet -r bench/peers-requirements.txt
	touch $(PEERS_STAMP)

# The same 20 submissions graded by nbgrader, otter, raw nbclient and this grader, in one run.
bench-peers: $(STAMP) $(PEERS_STAMP)
	OMP_NUM_THREADS=1 $(PY) bench/peers.py --peers-python $(PEERS_VENV)/bin/python --workers $(CORES)

clean:
	rm -rf $(VENV) $(PEERS_VENV) $(OUT) build *.egg-info test-artifacts
