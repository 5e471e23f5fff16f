# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test install install-test clean-venv

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
	$(PY) -m apps.siamese_train --output runs/demo

# Run the suite. pytest's exit code 5 (no tests collected) is reported and fails the run.
test: $(VENV)/.installed-test
	@rc=0; $(PY) -m pytest -n 2 $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; failing." >&2; fi; \
	exit $$rc

clean-venv:
	rm -rf $(VENV)
