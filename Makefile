# The two commands of the README: `make demo` and `make test`. Both set up .venv on first use.
VENV := .venv
BIN := $(VENV)/bin
STACK ?= demo-local

.PHONY: demo down test bootstrap plan bench fuzz clean

bootstrap:
	@./scripts/bootstrap

demo: bootstrap  ## the main job on the embedded local default (no AWS account, no Docker)
	$(BIN)/mlops local up --stack $(STACK)

down:  ## stop what `make demo` left running
	$(BIN)/mlops local down --stack $(STACK)

test:  ## the whole test suite, as CI runs it (bootstrap also installs the test tools: checkov)
	@./scripts/bootstrap --test-tools
	$(BIN)/python -m pytest -q -n auto --dist loadfile  # pytest-xdist: one worker per core; a file's tests on one worker, in order (several share one environment)

plan: bootstrap  ## plan every shipped stack offline
	$(BIN)/mlops plan --all --quiet

bench: bootstrap  ## benchmarks (not tests): see benchmarks/README.md
	$(BIN)/python benchmarks/plan_stacks.py

clean:
	rm -rf $(VENV) .venv-tools .pytest_cache

fuzz: bootstrap  ## seeded mutations of the shipped stacks: counts config errors, valid plans and tracebacks (must be 0)
	$(BIN)/python tests/foundation/test_fuzz_stacks.py --mutations $(or $(MUTATIONS),3000)
