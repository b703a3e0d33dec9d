# alignlab: `make reproduce` (cpu profile) and `make test` (unit + integration tests, nbval on the smoke profile).
PROFILE ?= cpu
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
# `make extras` runs the second target's notebook (the paper's grid, rho chosen on alignment data);
# `make reproduce` runs every other one.
EXTRA_NOTEBOOKS := notebooks/09_grid.ipynb
NOTEBOOKS := $(filter-out $(EXTRA_NOTEBOOKS),$(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb)))
# ALIGNLAB_RESULTS moves the executed notebooks along with the results JSONs the notebooks write.
RESULTS := $(or $(ALIGNLAB_RESULTS),results)/$(PROFILE)
export HF_HUB_DISABLE_TELEMETRY := 1
PROFILES := $(sort $(basename $(notdir $(wildcard configs/*.yaml))))
ifeq ($(filter $(PROFILE),$(PROFILES)),)
$(error unknown profile '$(PROFILE)': use one of $(PROFILES) (configs/<name>.yaml))
endif

.PHONY: setup setup-cuda gpu-check reproduce extras lab test unit integration slow nbval dryrun bench clean-cache help
.DEFAULT_GOAL := help

help:
	@echo "make reproduce [PROFILE=<one of: $(PROFILES)>]  run notebooks 00-08 with configs/<profile>.yaml (default cpu)"
	@echo "make extras [PROFILE=...]  the second target: the paper's grid and rho chosen on alignment data (09)"
	@echo "make test        unit + integration tests, then nbval on the notebooks (smoke profile)"
	@echo "make lab         JupyterLab on the project's kernel, to read and run the notebooks"
	@echo "make setup-cuda  .venv with a CUDA build of torch, for the paper profile on a GPU machine"
	@echo "make gpu-check   the paper profile's GPU path at 7B shape in minutes (needs a GPU)"
	@echo "make slow        whole-run kill/resume and 2-process accelerate tests (CI runs them)"
	@echo "make dryrun      every notebook on the paper profile's code paths with local stand-ins (CI runs it)"
	@echo "make bench       performance figures (training steps, bf16, padding, generation, search, sampling)"

# The environment is rebuilt only when its pinned files change.
setup: $(VENV)/.ready
$(VENV)/.ready: requirements.txt requirements-assets.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-assets.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name alignlab --display-name "alignlab (.venv)"
	touch $@

# The paper profile needs a CUDA build of torch (requirements.txt pins the CPU build): on a GPU
# machine, `make setup-cuda` sets up .venv as `make setup` does, then swaps in the same torch
# release built for CUDA (CUDA_INDEX: PyTorch's wheel index for the machine's CUDA version).
CUDA_INDEX ?= https://download.pytorch.org/whl/cu128
setup-cuda: setup
	$(BIN)/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
		--index-url $(CUDA_INDEX) torch==$$($(BIN)/python -c "import torch; print(torch.__version__.split('+')[0])")
	$(BIN)/python -c "import torch; assert torch.cuda.is_available(), 'torch ' + torch.__version__ + ' sees no CUDA device'; print('CUDA', torch.version.cuda, torch.cuda.get_device_name())"

# paper-dryrun: tiny local stand-ins of the paper profile's hub models and datasets, built when
# missing or when their script changes; the dry run's stage caches are keyed by hub id, so they go too.
HUB_MIRROR := .cache/alignlab/hub-mirror
$(HUB_MIRROR)/MANIFEST.json: scripts/make_dryrun_assets.py tests/fixtures/chat_templates/olmo2_1124_instruct.jinja | $(VENV)/.ready
	$(BIN)/python scripts/make_dryrun_assets.py --out $(HUB_MIRROR) --force
	rm -rf $(or $(ALIGNLAB_CACHE),.cache/alignlab)/paper-dryrun
ifeq ($(PROFILE),paper-dryrun)
$(patsubst notebooks/%,$(RESULTS)/%,$(NOTEBOOKS) $(EXTRA_NOTEBOOKS)): $(HUB_MIRROR)/MANIFEST.json
endif

# One executed notebook per target; each stage's heavy work is cached under .cache/alignlab, so an
# edit to the package reruns every notebook cheaply and recomputes only the stages whose code changed.
LIB := $(shell find lib/alignlab -name '*.py')
$(RESULTS)/%.ipynb: notebooks/%.ipynb configs/$(PROFILE).yaml $(LIB) $(VENV)/.ready
	@mkdir -p $(RESULTS)
	$(BIN)/papermill --kernel alignlab --cwd notebooks --log-output -p profile $(PROFILE) $< $@.partial.ipynb
	mv $@.partial.ipynb $@  # a failed run leaves no target behind, so make retries it

reproduce: setup $(patsubst notebooks/%,$(RESULTS)/%,$(NOTEBOOKS))
	$(BIN)/python -m alignlab.claims --profile $(PROFILE)  # a publishing profile also copies its notebooks to docs/
	@echo "executed notebooks and results JSONs: $(RESULTS)/"

# The second target: notebook 09, then the ledger again (its claims join claims.json as their own part).
extras: setup $(patsubst notebooks/%,$(RESULTS)/%,$(EXTRA_NOTEBOOKS))
	$(BIN)/python -m alignlab.claims --profile $(PROFILE)
	@echo "executed notebook and results JSON: $(RESULTS)/"

# JupyterLab on the project's kernel ("alignlab (.venv)"), opened at the repository's root.
lab: setup
	$(BIN)/jupyter lab --notebook-dir=.

# Test tiers (pytest markers of the same names): unit has no training, integration trains tiny
# models, slow runs whole `make reproduce` kill/resume and 2-process accelerate runs.
unit integration slow: setup
	$(BIN)/python -m pytest -q -m $@ tests/$@

nbval: setup
	cd notebooks && ../$(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-kernel-name alignlab \
		--nbval-sanitize-with ../tests/nbval_sanitize.cfg $(notdir $(NOTEBOOKS) $(EXTRA_NOTEBOOKS))

# make test: the fast tiers and nbval (15 min or less on a fresh clone); CI adds the slow tier.
test: unit integration nbval

# The paper profile's code paths (hub loaders, Llama-2 without template, OLMo 2, beaver-dam, bge-m3,
# IVF) on tiny local stand-ins; CI runs it after the tests.
dryrun:
	$(MAKE) reproduce extras PROFILE=paper-dryrun

# The paper profile's GPU path in minutes on one GPU, offline (7B-shaped random models, the dry
# run's stand-ins): writes its table to docs/gpu_check.md; exits 2 at once where torch sees no CUDA device.
gpu-check: setup $(HUB_MIRROR)/MANIFEST.json
	ALIGNLAB_HUB_MIRROR=$(HUB_MIRROR) $(BIN)/python scripts/gpu_check.py --out docs/gpu_check.md

bench: setup
	$(BIN)/python scripts/bench_generation_dtype.py --out docs/generation_dtype.json
	$(BIN)/python scripts/bench_training.py
	$(BIN)/python scripts/bench_search.py
	$(BIN)/python scripts/bench_sampling.py

clean-cache:
	rm -rf .cache/alignlab results
