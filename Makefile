# The developer's whole workflow. `make run` and `make test` set everything up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup run test unit infra-test e2e contract lint format synth deploy diff destroy bench cost openapi lock clean

help:
	@echo "make run      start the local stack (moto + Optimove simulator), post sample events, show the audit trail"
	@echo "make test     lint, then every test: unit, infrastructure (synth + cdk-nag + cfn-lint), end to end"
	@echo "make synth    synthesize the CloudFormation template into cdk.out/ (offline)"
	@echo "make deploy   cdk deploy to the AWS account of your current credentials"
	@echo "make lint     ruff and mypy;  make format  ruff format and fixes"
	@echo "make bench    benchmarks (cold start, warm path, connector throughput)"
	@echo "make cost     what a million events cost, metered through the local stack (dig cost)"
	@echo "make openapi  regenerate docs/openapi.json from the code"
	@echo "make contract Schemathesis with every phase, its coverage phase included (about 3 minutes)"

# uv (itself installed from its hashed lock) installs the hashed dev lock in seconds where pip takes
# minutes; --native-tls: the system's CA store, as pip uses it.
$(VENV)/.stamp: pyproject.toml requirements/dev.txt requirements/uv.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/uv.txt
	$(BIN)/uv pip install --quiet --native-tls --python $(BIN)/python --require-hashes -r requirements/dev.txt
	$(BIN)/uv pip install --quiet --native-tls --python $(BIN)/python --no-deps -e .
	touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.stamp node_modules/.stamp

run: setup
	$(BIN)/dig local --demo

test: lint unit infra-test e2e

unit: setup
	$(BIN)/pytest tests/unit src/connectors -q -n auto

infra-test: setup
	$(BIN)/pytest tests/infra -q -n 2 --dist loadfile

# Two groups at once, one a core: the tests that start local stacks of their own, and the rest on the
# shared one (each pytest process has its own; their waits overlap). The first group's report follows.
E2E_OWN_STACKS := tests/e2e/test_tipalti.py tests/e2e/test_sfmc.py tests/e2e/test_cost.py tests/e2e/test_marketo.py \
	tests/e2e/test_connector_faults.py tests/e2e/test_operator_status.py
e2e: setup
	@rm -f .e2e-own-stacks.log
	$(BIN)/pytest $(E2E_OWN_STACKS) -q -p no:cacheprovider > .e2e-own-stacks.log 2>&1 & own=$$!; \
	$(BIN)/pytest tests/e2e -q $(addprefix --ignore=,$(E2E_OWN_STACKS)); shared=$$?; \
	wait $$own; owned=$$?; echo "--- tests on stacks of their own:"; cat .e2e-own-stacks.log; \
	test $$shared -eq 0 && test $$owned -eq 0

lint: setup
	$(BIN)/ruff check src infra tests benchmarks
	$(BIN)/ruff format --check src infra tests benchmarks
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix src infra tests benchmarks
	$(BIN)/ruff format src infra tests benchmarks

synth: setup
	npx cdk synth --quiet --no-notices

diff: setup
	npx cdk diff --no-notices

deploy: setup
	npx cdk deploy --no-notices

destroy: setup
	npx cdk destroy --no-notices

contract: setup
	DIG_SCHEMATHESIS_PHASES=examples,coverage,fuzzing,stateful $(BIN)/pytest tests/e2e/test_contract.py -q

bench: setup
	$(BIN)/python -m benchmarks

# The README's table (about 25 minutes): a month of 1, 10 and 100 million events of the default mix on
# each route, paced, against the template of a stack with the two connectors measured (its alarms,
# secrets, web ACL and metrics are the fixed monthly costs).
COST_CONNECTORS := optimove,marketo
cost: setup
	DIG_CONNECTORS=$(COST_CONNECTORS) npx cdk synth --quiet --no-notices
	for month in 1M 10M 100M; do for route in batch single; do \
	  $(BIN)/dig cost --mix --route $$route --monthly $$month --connectors $(COST_CONNECTORS) || exit 1; \
	done; done

openapi: setup
	$(BIN)/python -m dig_api.openapi > docs/openapi.json

lock: $(VENV)/.stamp
	$(BIN)/uv pip compile requirements/uv.in --universal --python-version 3.11 --generate-hashes -q -o requirements/uv.txt
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --no-emit-package dig --generate-hashes -q -o requirements/dev.txt
	$(BIN)/uv pip compile pyproject.toml --python-version 3.14 --python-platform aarch64-manylinux_2_28 --generate-hashes -q -o requirements/lambda.txt
	# Every installed connector's own locks (its manifest's and its jobs' requirements), each from requirements.in beside it.
	$(BIN)/python -m dig_contracts.registry | while read -r source lock; do \
		$(BIN)/uv pip compile "$$source" --python-version 3.14 --python-platform aarch64-manylinux_2_28 --generate-hashes -q -o "$$lock" || exit 1; \
	done

clean:
	rm -rf cdk.out .build .pytest_cache .mypy_cache .ruff_cache
