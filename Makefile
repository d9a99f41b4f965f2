# The two commands: `make run` and `make test`. Both set up what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

CLIENT_SRC := $(shell find client/src client/public -type f 2>/dev/null) \
	$(wildcard client/index.html client/vite.config.* client/tsconfig*.json \
	  client/tailwind.config.* client/postcss.config.* client/package.json)

.PHONY: setup run test lint typecheck pytest client-test client-types e2e screenshots \
	bench bench-quick clean test-reliability sdk-js sdk-js-test

setup: $(STAMP) client/dist/index.html

$(STAMP): pyproject.toml constraints.txt sdk/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]' -e sdk/python
	@touch $@

client/node_modules/.installed-stamp: client/package-lock.json
	cd client && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

client/dist/index.html: client/node_modules/.installed-stamp $(CLIENT_SRC)
	cd client && npm run build
	@touch $@

run: setup
	$(BIN)/tokenbank dev --port $(PORT)

# Style, then the import contracts in pyproject.toml ([tool.importlinter]): the ledger is
# a leaf, no import cycles, routes never import each other, each domain's layers.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

client-test: client/node_modules/.installed-stamp
	cd client && npm test

# The TypeScript SDK (sdk/js: @tokenbank/client, @tokenbank/react) is built and tested with
# the web client's installed tools and libraries (no second install): its node_modules is a
# link to the client's.
sdk/js/node_modules: client/node_modules/.installed-stamp
	ln -sfn ../../client/node_modules sdk/js/node_modules

sdk-js-test: sdk/js/node_modules
	cd sdk/js && PATH="$$PWD/node_modules/.bin:$$PATH" npm run --silent typecheck
	cd sdk/js && PATH="$$PWD/node_modules/.bin:$$PATH" npm test

sdk-js: sdk-js-test
	cd sdk/js && PATH="$$PWD/node_modules/.bin:$$PATH" npm run --silent build
	ln -sfn ../../../client/node_modules examples/fastapi-chat/web/node_modules
	cd examples/fastapi-chat/web && ./node_modules/.bin/vite build --config vite.config.ts --logLevel warn

# Regenerate the web client's API types from the app's OpenAPI schema.
client-types: $(STAMP) client/node_modules/.installed-stamp sdk/js/node_modules
	$(BIN)/tokenbank openapi > client/openapi.json
	cd client && npm run gen:api
	cd sdk/js && PATH="$$PWD/node_modules/.bin:$$PATH" npm run --silent gen:api

pytest: setup
	@scripts/ensure-postgres.sh
	@scripts/ensure-chromium.sh
	@scripts/ensure-pgbouncer.sh
	@scripts/ensure-redis.sh
	$(BIN)/pytest

test: setup lint typecheck client-test sdk-js pytest

# The reliability scenarios alone, printing their figures (`make test` runs them too, once,
# as part of all of tests/).
test-reliability: setup
	@scripts/ensure-postgres.sh
	$(BIN)/pytest tests/reliability -rP

e2e: setup
	@scripts/ensure-chromium.sh
	$(BIN)/pytest tests/e2e

screenshots: setup
	@scripts/ensure-chromium.sh
	$(BIN)/python -m tests.e2e.screenshots

bench: setup
	$(BIN)/python -m bench run --full

bench-quick: setup
	$(BIN)/python -m bench run --quick

clean:
	rm -rf $(VENV) client/node_modules client/dist data .pytest_cache .mypy_cache .ruff_cache
