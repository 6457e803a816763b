# Two commands: `make up` runs the embedded default, `make test` runs every check. Both create .venv if missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: up cluster test lint typecheck unit bench clean

# pyproject.toml changes re-install; the stamp files remember what was installed. `make up` and `make cluster` need the
# runtime dependencies plus the embedded broker (amqtt); `make test` needs the test extra, which brings
# every other extra (the tests run all of it) and the exact versions of the tools that gate it (ruff, mypy, ...).
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# An editable install leaves the project's modules uncompiled: with PYTHONDONTWRITEBYTECODE set (the Dockerfile and
# some shells set it) every process would compile them again, tens of ms per command. pip compiles an installed
# package's modules; here compileall does (a cache older than its source is ignored, never wrong).
COMPILE := $(BIN)/python -m compileall -q config simulator bridge broker >/dev/null

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[embedded]"
	$(COMPILE)
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(COMPILE)
	@touch $@ $(VENV)/.installed-run

# Broker (amqtt on 127.0.0.1), meters A, B, C and the bridge on http://127.0.0.1:$${FLEET_HTTP_PORT:-5000}/.
# Ctrl-C (or SIGTERM to make) stops them all; one of them that exits (a meter stopped on purpose) leaves the others
# running (config/run/supervise.py).
up: $(VENV)/.installed-run
	PATH="$(CURDIR)/$(BIN):$$PATH" exec $(BIN)/python -m config.run.supervise Procfile

# A 3-node NATS JetStream cluster (nats-server 2.9+: apt-get install -y nats-server), six meters of households A, B, C
# (two per node, see Procfile.cluster) and two bridge shards (http://127.0.0.1:$(CLUSTER_HTTP_PORT)/ and the port after it). Node k's ports: each base + k - 1.
# The configs are written first, into $${FLEET_DATA_DIR:-data}/nats, with the fleet secret every process shares.
CLUSTER_MQTT_PORT ?= 1883
CLUSTER_CLIENT_PORT ?= 4222
CLUSTER_ROUTE_PORT ?= 6222
CLUSTER_MONITOR_PORT ?= 8222
CLUSTER_HTTP_PORT ?= 5000
CLUSTER_METERS := A-0001,B-0001,C-0001,A-0002,B-0002,C-0002
cluster: $(VENV)/.installed-run
	@{ command -v nats-server || test -x /usr/sbin/nats-server; } >/dev/null || { echo "make cluster needs nats-server: apt-get install -y nats-server" >&2; exit 1; }
	data="$${FLEET_DATA_DIR:-data}"; \
	node1="mqtt://127.0.0.1:$(CLUSTER_MQTT_PORT)" node2="mqtt://127.0.0.1:$$(($(CLUSTER_MQTT_PORT) + 1))" node3="mqtt://127.0.0.1:$$(($(CLUSTER_MQTT_PORT) + 2))"; \
	export CLUSTER_BROKERS="$$node1,$$node2,$$node3" CLUSTER_BROKERS_3="$$node3,$$node1,$$node2"; \
	export FLEET_MQTT_SECRET="$${FLEET_MQTT_SECRET:-$$data/mqtt-secret}" CLUSTER_DIR="$$data/nats" FLEET_HOUSEHOLDS="$(CLUSTER_METERS)" \
		CLUSTER_MQTT_PORT="$(CLUSTER_MQTT_PORT)" CLUSTER_HTTP_PORT="$(CLUSTER_HTTP_PORT)" PATH="$(CURDIR)/$(BIN):$$PATH:/usr/sbin"; \
	$(BIN)/python -m broker nats-config --out "$$CLUSTER_DIR" --mqtt-port "$(CLUSTER_MQTT_PORT)" \
		--client-port "$(CLUSTER_CLIENT_PORT)" --cluster-port "$(CLUSTER_ROUTE_PORT)" --http-port "$(CLUSTER_MONITOR_PORT)" && \
	exec $(BIN)/python -m config.run.supervise Procfile.cluster

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

unit: $(VENV)/.installed-test
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
