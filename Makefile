# The README's two commands: `make demo` and `make test`. Both create the virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test validate calibrate lint audit format bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "sim needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,real]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sim run experiments/compare_patterns.py --quick
	@echo "report: results/compare_patterns/report.md (and report.html, figures/)"

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile

validate: $(STAMP)
	$(BIN)/python -m sim.analysis.validation --out docs/validation.md

# measures RabbitMQ, Mosquitto and NATS on loopback (apt-get install rabbitmq-server mosquitto nats-server),
# fits a profile per setting, predicts and rewrites experiments/calibration (docs/calibrate.md); ~6 minutes on an idle machine
calibrate: $(STAMP)
	$(BIN)/python -m sim.real.calibration --out experiments/calibration

lint: $(STAMP)
	$(BIN)/ruff check sim tests benchmarks experiments topologies
	$(BIN)/ruff format --check sim tests benchmarks experiments topologies
	$(BIN)/mypy
	$(BIN)/lint-imports

# known vulnerabilities in the installed dependencies; needs pypi.org's JSON API (or --vulnerability-service
# osv and api.osv.dev). --strict: a package that could not be checked fails the audit instead of passing it.
audit: $(STAMP)
	$(BIN)/pip-audit --strict --skip-editable

format: $(STAMP)
	$(BIN)/ruff format sim tests benchmarks experiments topologies
	$(BIN)/ruff check --fix sim tests benchmarks experiments topologies

# bench_scale runs the issue's full size (10^6 messages per pattern on 10^4 nodes)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_network.py
	$(BIN)/python benchmarks/bench_broker.py
	$(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_tricks.py
	$(BIN)/python benchmarks/bench_process.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
