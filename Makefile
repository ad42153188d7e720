# Make targets for the PBX. `make run` and `make test` are the two commands a newcomer needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
CONFIG ?= config/pbx.yaml
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench bench-register bench-calls bench-overload bench-queue bench-dialer bench-media prompts demo venv system-deps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test,postgres]'
	touch $@

venv: $(VENV)/.installed

# System tools the tests drive: SIPp (sip-tester), PostgreSQL (tests start their own server)
# and Chromium (the browser tests drive Debian's /usr/bin/chromium with Playwright).
system-deps:
	@command -v sipp >/dev/null 2>&1 || { \
	  echo "installing sip-tester (SIPp)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq sip-tester; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing postgresql (server binaries for the storage integration tests)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql; }
	@test -x /usr/bin/chromium || { \
	  echo "installing chromium (headless browser for tests/e2e)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

run: venv
	$(VENV)/bin/pbx run --config $(CONFIG)

# The example call center, live: the PBX on $(CONFIG) with simulated agents (pjsua2 phones that
# answer and talk) and a simulated carrier (SIPp calls with key presses); prints the wallboard
# and agent desktop URLs and logins. Ctrl-C stops it. Outside the example's business hours:
# make demo DEMO_ARGS=--open   (more: .venv/bin/python demo/run_demo.py --help)
demo: venv system-deps
	$(PY) demo/run_demo.py --config $(CONFIG) $(DEMO_ARGS)

# Unit tests first, on their own (some measure real-time media pacing); then the live tests,
# two files at a time: they mostly wait on real timers (ring timeouts, prompts, RTP), so two
# workers halve the wall time on a two-core machine without starving each other.
test: venv system-deps
	$(PY) -m pytest -q -ra tests/unit
	$(PY) -m pytest -q -ra -n 2 --dist loadfile tests/integration tests/e2e

lint: venv
	$(VENV)/bin/ruff check pbx media tests benchmarks
	$(VENV)/bin/mypy pbx media

bench: bench-register

bench-register: venv system-deps
	$(PY) benchmarks/bench_register.py

# Inbound calls from SIPp as the carrier: (a) IVR greeting then hangup, (b) IVR -> queue ->
# SIPp agents with bridged media, and SIPp calling SIPp directly (the load tool's ceiling).
bench-calls: venv system-deps
	$(PY) benchmarks/bench_calls.py

# Offered load at 1x, 2x and 3x the clean capacity of bench-calls (b): goodput, 503s, p99.
bench-overload: venv system-deps
	$(PY) benchmarks/bench_overload.py

# ACD end to end: 500 callers waiting with hold audio while SIPp agents answer.
bench-queue: venv system-deps
	$(PY) benchmarks/bench_queue.py

# Outbound dialer: attempts per second of a progressive campaign against a SIPp carrier.
bench-dialer: venv system-deps
	$(PY) benchmarks/bench_dialer.py

# Media engine: N playback streams and N bridged pairs, 20 s each, measured by a separate
# receiver process; adds the run to the end of "## Media" in benchmarks/RESULTS.md.
bench-media: venv
	$(PY) benchmarks/bench_media.py --results benchmarks/RESULTS.md

prompts: venv
	@command -v espeak-ng >/dev/null 2>&1 && command -v sox >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq espeak-ng sox; }
	$(PY) -m media.build_prompts prompts

clean:
	rm -rf $(VENV) build *.egg-info var
