# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test lint reference install install-test clean-venv mediapipe-check

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Train the headline app (Siamese one-shot verification) on the embedded offline dataset,
# export the embedding to TFLite (float32 + int8) and verify both against Keras.
demo: $(VENV)/.installed
	$(PY) -m apps.siamese_train --output runs/demo --overwrite

# Run the suite. pytest's exit code 5 (no tests collected) is reported and fails the run.
test: $(VENV)/.installed-test
	@rc=0; $(PY) -m pytest -n 2 $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; failing." >&2; fi; \
	exit $$rc

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .

# Refresh the committed reference exports in saved_models/ (and MANIFEST.json) with each app's
# default run. Trial runs never touch them: by default every app writes a new runs/<app>/ folder.
reference: $(VENV)/.installed
	$(PY) -m apps.lenet_train --quiet --output saved_models/lenet_train --overwrite
	$(PY) -m apps.alexnet_train --quiet --output saved_models/alexnet_train --overwrite
	$(PY) -m apps.siamese_train --quiet --output saved_models/siamese_train --overwrite
	for v in dense conv denoising sparse contractive; do \
	  $(PY) -m apps.autoencoder_train --quiet --variant $$v --output saved_models/autoencoder_train/$$v --overwrite || exit 1; \
	done
	$(PY) -m apps.vae_train --quiet --output saved_models/vae_train/vae --overwrite

# MediaPipe Tasks reads the exported classifiers offline (tests/test_mediapipe.py and
# benchmarks/check_mediapipe.py). mediapipe needs the non-headless OpenCV, so it never joins the
# project's venv: a side venv sees the project's packages through a .pth and gets mediapipe alone.
MP_VENV   ?= .venv-mediapipe
MEDIAPIPE ?= mediapipe==0.10.35
$(MP_VENV)/.installed:
	@test -x $(PY) || { echo "make mediapipe-check: run 'make install-test' first (or pass VENV=...)." >&2; exit 2; }
	$(PYTHON) -m venv $(MP_VENV)
	$(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > $(MP_VENV)/project-site.txt
	$(MP_VENV)/bin/python -c "import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'], \
	  'project.pth').write_text(pathlib.Path('$(MP_VENV)/project-site.txt').read_text())"
	$(MP_VENV)/bin/python -m pip install --quiet --no-deps $(MEDIAPIPE)
	touch $@

mediapipe-check: $(MP_VENV)/.installed
	$(MP_VENV)/bin/python -m pytest -q -p no:warnings tests/test_mediapipe.py
	$(MP_VENV)/bin/python -m benchmarks.check_mediapipe

clean-venv:
	rm -rf $(VENV)
