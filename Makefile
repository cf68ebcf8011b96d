# The two commands of README.md:  `make deploy` (dev stack)  and  `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv/bin
INVENTORY ?= inventories/dev
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV):$(PATH)

.PHONY: help bootstrap engine deploy test lint unit integration molecule clean

help:
	@echo "make deploy   set up the tools and deploy the dev stack (ansible-playbook site.yml -i $(INVENTORY))"
	@echo "make test     lint, unit tests, Molecule (converge, idempotence, verify) and integration tests"

bootstrap: .venv/.synced

.venv/.synced: pyproject.toml uv.lock scripts/bootstrap.sh
	scripts/bootstrap.sh
	@touch $@

engine: bootstrap
	ansible-playbook playbooks/docker_host.yml -i $(INVENTORY)

deploy: bootstrap
	ansible-playbook site.yml -i $(INVENTORY)

lint: bootstrap
	yamllint --strict .
	ansible-lint
	ruff check plugins tests molecule scripts roles/grafana/files files/images/kafka_exporter
	ruff format --check plugins tests molecule scripts roles/grafana/files files/images/kafka_exporter
	mypy plugins tests/unit files/images/kafka_exporter
	python scripts/check_argument_specs.py

unit: bootstrap
	pytest -q tests/unit

# Molecule prints its destroy step and recap after the verifier's summary: on a failure, the failed tests are
# printed again last, from the verifiers' JUnit reports (.config/molecule/config.yml), so the tail of a CI
# log names them.
molecule: engine
	@mkdir -p .cache && rm -f .cache/molecule-*.xml
	molecule test --all || \
	  { echo "==> Molecule failed; failed tests:"; python scripts/failed_tests.py .cache/molecule-*.xml; exit 1; }

integration: engine
	pytest -q -m integration tests/integration

test: lint unit molecule integration

clean:
	rm -rf .venv .cache
