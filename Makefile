# Two commands set everything up on a fresh machine:  make run  (the app)  and  make test  (the tests).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON ?= python3

# Offline: no model hub, no telemetry, no Gradio analytics.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

.PHONY: run test install ingest lint

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Ingest corpus/ (incremental: unchanged files are skipped in seconds), then open the app.
run: $(STAMP)
	$(BIN)/policy-rag ingest corpus || test $$? -eq 2
	$(BIN)/policy-rag serve

# The tests, then the answer-quality gates (fail below eval/thresholds.toml): eval/qa.jsonl over a fresh index of
# corpus/, and the held-out staff questions over eval/staff/corpus/.
test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(BIN)/policy-rag eval --answerer extractive --data-dir "$$(mktemp -d)" --out artifacts/eval
	$(BIN)/policy-rag eval --qa eval/staff/qa.jsonl --answerer extractive --data-dir "$$(mktemp -d)" --out artifacts/eval-staff
