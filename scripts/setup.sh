#!/usr/bin/env bash
# Install vidground (editable) with the given extras; installs a CPU build of PyTorch first
# where torch is missing, so pip does not pull several GB of CUDA packages.
#
#   bash scripts/setup.sh            # the package, offline default backends
#   bash scripts/setup.sh test       # plus everything the test suite needs
#   bash scripts/setup.sh openai,hf  # any extras from pyproject.toml
#
# Users with a GPU install their own CUDA build of torch first; it is then left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
extras="${1:-}"

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "setup: torch is missing; installing a CPU build" >&2
    # A local or mirrored torch==2.13.0 CPU wheel is preferred; otherwise PyTorch's CPU index.
    "$PY" -m pip install -q "torch==2.13.0" 2>/dev/null \
        || "$PY" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
fi

if [ -n "$extras" ]; then
    "$PY" -m pip install -q -e ".[$extras]"
else
    "$PY" -m pip install -q -e .
fi

# The HTML report test drives a real headless browser; install Debian's Chromium where we can.
case ",$extras," in
*,test,*)
    if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing chromium for the report test" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
            || echo "setup: chromium could not be installed; the browser test will be skipped" >&2
    fi
    ;;
esac
echo "setup: vidground installed${extras:+ with [$extras]}" >&2
