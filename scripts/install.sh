#!/usr/bin/env bash
# Install equiformer_lite and its dependencies into the active Python environment.
#
#   bash scripts/install.sh          # the package
#   bash scripts/install.sh test     # the package and its test extra
#
# torch is pinned to the 2.13.0 CPU wheel first (an unpinned torch pulls GBs of CUDA packages);
# everything else comes as wheels (the neighbour lists are vesin's, no source build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0
EXTRAS=${1:-}

pip_install() { "$PYTHON" -m pip install --disable-pip-version-check -q "$@"; }

pip_install "torch==${TORCH_VERSION}"
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "torch==${TORCH_VERSION}" > "$constraints"  # never let a dependency pull another torch
if [ -n "$EXTRAS" ]; then
    pip_install -c "$constraints" -e ".[${EXTRAS}]"
else
    pip_install -c "$constraints" -e .
fi
echo "equiformer_lite installed: $("$PYTHON" -c 'import equiformer_lite; print(equiformer_lite.__version__)')"
