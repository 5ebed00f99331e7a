#!/usr/bin/env bash
# Install equiformer_lite and its dependencies into the active Python environment.
#
#   bash scripts/install.sh          # the package
#   bash scripts/install.sh test     # the package and its test extra
#
# torch is pinned to the 2.13.0 CPU wheel (an unpinned torch pulls GBs of CUDA packages).
# torch-cluster has no wheel for it and builds from source (several minutes) against the installed
# torch, so the built wheel is cached in $EQUIFORMER_WHEEL_CACHE (default ~/.cache/equiformer_lite/
# wheels/torch-<version>) and a second install takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0
TORCH_CLUSTER_VERSION=1.6.3
EXTRAS=${1:-}

pip_install() { "$PYTHON" -m pip install --disable-pip-version-check -q "$@"; }

pip_install "torch==${TORCH_VERSION}"

if ! "$PYTHON" -c "import torch_cluster" 2>/dev/null; then
    cache=${EQUIFORMER_WHEEL_CACHE:-$HOME/.cache/equiformer_lite/wheels}/torch-${TORCH_VERSION}
    mkdir -p "$cache"
    wheel=$(ls "$cache"/torch_cluster-"${TORCH_CLUSTER_VERSION}"-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
        echo "building torch-cluster ${TORCH_CLUSTER_VERSION} from source (several minutes, once)..."
        pip_install ninja  # lets torch's extension builder compile in parallel
        MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PYTHON" -m pip wheel --disable-pip-version-check -q --no-build-isolation --no-deps \
            "torch-cluster==${TORCH_CLUSTER_VERSION}" -w "$cache"
        wheel=$(ls "$cache"/torch_cluster-"${TORCH_CLUSTER_VERSION}"-*.whl | head -n 1)
    fi
    pip_install --no-deps "$wheel"
fi

if [ -n "$EXTRAS" ]; then
    pip_install -e ".[${EXTRAS}]"
else
    pip_install -e .
fi
echo "equiformer_lite installed: $("$PYTHON" -c 'import equiformer_lite; print(equiformer_lite.__version__)')"
