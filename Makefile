# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install
# what they need (Python packages into the venv, Debian packages through apt when missing).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
PACK_VENV  := stacks/policy-pack/venv
PACK_STAMP := $(PACK_VENV)/.installed

.PHONY: demo test lint unit faults system-deps newer-nginx newer-haproxy policy-pack-venv bench mutation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

system-deps:
	@scripts/install-debian-packages

demo: $(STAMP) system-deps
	$(BIN)/remediate demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy remediate
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ansible-lint --offline remediate/providers/nginx/playbooks/ \
		remediate/providers/haproxy/playbooks/

# Two workers, a test module each at a time (module-scoped fixtures such as the Nginx corpus run
# once): most tests wait on nginx, HAProxy, Ansible or an emulator, so two share 2 cores well.
PYTEST_PARALLEL ?= -n 2 --dist loadfile

unit: $(STAMP) system-deps newer-nginx newer-haproxy policy-pack-venv
	$(BIN)/pytest -m "not faults" $(PYTEST_PARALLEL)

# The fault-injection and kill suites (a fault proxy in front of moto and the Compute stand-in,
# SIGKILL/SIGTERM/SIGINT at random points of AWS, GCP and Nginx applies): long, so not in `make test`.
faults: $(STAMP) system-deps
	$(BIN)/pytest -m faults -rA

test: lint unit

# nginx from Debian 13, unpacked under build/ (not installed) for the 1.25.1+ syntax tests.
newer-nginx:
	@scripts/fetch-newer-nginx || echo "could not fetch a newer nginx; its tests will be skipped" >&2

# HAProxy 2.8+ from Debian 13, unpacked under build/ (not installed) for its default ALPN (h2).
newer-haproxy:
	@scripts/fetch-newer-haproxy || echo "could not fetch a newer haproxy; its tests will be skipped" >&2

# The CrossGuard pack's own virtualenv (pulumi-policy pins protobuf 5.29), where PulumiPolicy.yaml
# says and the way Pulumi builds it: pip in the pack directory. Its test serves the pack over gRPC.
$(PACK_STAMP): stacks/policy-pack/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(PACK_VENV)
	cd stacks/policy-pack && venv/bin/pip install --quiet -r requirements.txt
	touch $@

policy-pack-venv: $(PACK_STAMP)

bench: $(STAMP) system-deps
	$(BIN)/python -m bench

# Mutation testing (not part of `make test`): mutmut mutates the rules, planner, engine, Nginx
# edits and executors ([tool.mutmut] in pyproject.toml) and runs the unit and contract layers
# against each mutant; prints the share killed. MUTATION_JOBS sets the parallel workers. A whole
# run takes hours on 2 cores (the Ansible contract tests cover the Nginx rules): MUTANTS runs some
# and keeps earlier results, e.g. `make mutation MUTANTS='remediate.providers.aws.rules*'`.
MUTATION_JOBS ?= 2
MUTANTS ?=

mutation: $(STAMP) system-deps
	$(if $(MUTANTS),,rm -rf mutants)
	$(BIN)/mutmut run --max-children $(MUTATION_JOBS) $(foreach m,$(MUTANTS),'$(m)')
	$(BIN)/python scripts/mutation-score

clean:
	rm -rf $(VENV) $(PACK_VENV) .mypy_cache .ruff_cache .pytest_cache mutants
