# Soundstage: `make run` and `make test` do all set-up on a fresh Debian/Ubuntu machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.soundstage-installed
DEMO   := resources/demo/feelings-mono.flac

.PHONY: run test setup system-deps bench bench-ui screenshot clean

# With a display: the desktop app on the demo. Without one (a server, CI): `soundstage gui` says
# so in one line, and the demo is upmixed headless with the best available model instead.
run: setup
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		$(VENV)/bin/soundstage gui $(DEMO); \
	else \
		$(VENV)/bin/soundstage gui $(DEMO) || true; \
		$(VENV)/bin/soundstage upmix $(DEMO) -o out/demo-stereo.wav --force && \
		echo "Stereo demo written to $(CURDIR)/out/demo-stereo.wav"; \
	fi

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

$(PY):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: an unpinned torch pulled in by a dependency would fetch GBs of CUDA packages.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

bench: setup
	$(PY) bench/bench_decoder.py
	$(PY) bench/bench_session.py

bench-ui: setup
	$(PY) bench/bench_ui.py

screenshot: setup
	bash scripts/screenshot.sh

clean:
	rm -rf $(VENV) out .pytest_cache
