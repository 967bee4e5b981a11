# chromosched: `make demo` runs the main job on the bundled demo data, `make test` runs the tests.
# Both run `make setup` first, which is idempotent and returns in about a second when nothing changed.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := demo

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
# Debian packages the pipeline and its tests call: Beagle 5.4 (brings OpenJDK), bcftools, tabix/bgzip, plink2;
# a single-node Slurm for the cluster tests (tests/cluster/slurm.py starts it; sacct needs slurmdbd + MariaDB);
# gcc for the static scheduler's exact branch and bound (compiled on first use).
APT_PACKAGES := beagle bcftools tabix plink2 slurmctld slurmd slurm-client munge slurmdbd mariadb-server gcc libc6-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SCHEDULER_SOURCES := scheduler/pyproject.toml $(shell find scheduler/src -type f \( -name '*.py' -o -name '*.tsv' -o -name '*.json' -o -name '*.c' \) -not -path '*.egg-info*')
PYTEST_ARGS ?=

.PHONY: setup system-packages demo test lint format clean

setup: system-packages $(VENV)/.installed

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Pinned Python dependencies (requirements.txt is a full pin of the tested environment).
$(VENV)/.requirements: requirements.txt
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade "pip>=24"
	$(VENV)/bin/python -m pip install -q -r requirements.txt
	touch $@

# The plugin is installed as a regular package: Snakemake's plugin discovery may miss editable installs.
$(VENV)/.installed: $(VENV)/.requirements $(SCHEDULER_SOURCES)
	$(VENV)/bin/python -m pip install -q --no-deps --no-build-isolation --force-reinstall ./scheduler
	rm -rf scheduler/build
	touch $@

# The demo: simulate the cohort into resources/demo/ (skipped when its manifest matches), print the
# dry-run plan (memory-safe batches), run the pipeline on all 22 chromosomes with the local profile
# (the chromosched scheduler plugin, dynamic mode), build the report.
DEMO_CORES ?= $(shell nproc)
demo: setup
	PYTHONPATH=$(CURDIR)/workflow $(BIN)/python -m chromosched_pipeline.demo_data.simulate --out resources/demo --if-missing
	$(BIN)/chromosched plan --profile profiles/local --cores $(DEMO_CORES)
	$(BIN)/snakemake --profile profiles/local --cores $(DEMO_CORES)
	$(BIN)/snakemake --report results/report.html
	@echo "PRS table: $(CURDIR)/results/prs/prs.tsv"
	@echo "report:    $(CURDIR)/results/report.html"
	@echo "schedule:  $(CURDIR)/results/report/scheduler_schedule.png (and predicted_vs_measured.png)"

test: setup
	$(BIN)/python -m pytest tests -rs $(PYTEST_ARGS)

# Lint (CI runs it before the tests; any finding fails): ruff (ruff.toml) and its formatter over all Python,
# snakefmt over the Snakefile and rules/ at the code's 120 columns, and `snakemake --lint` (it reads the
# config, so the demo data are simulated first, skipped when present). `make format` applies the fixes.
SNAKEFILES := Snakefile $(wildcard rules/*.smk)
SNAKEFMT := $(BIN)/snakefmt --line-length 120
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(SNAKEFMT) --check $(SNAKEFILES)
	PYTHONPATH=$(CURDIR)/workflow $(BIN)/python -m chromosched_pipeline.demo_data.simulate --out resources/demo --if-missing
	$(BIN)/snakemake --lint --cores 1

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(SNAKEFMT) $(SNAKEFILES)

clean:
	rm -rf $(VENV) .snakemake results logs resources/demo benchmarks/out
