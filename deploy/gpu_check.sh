#!/usr/bin/env bash
# The GPU check (deploy/gpu_check.py): one command, under 8 minutes, one JSON line on stdout
# (progress and tracebacks on stderr). Needs an NVIDIA GPU, torch with CUDA and cuda-python;
# TensorRT parts run where `import tensorrt` works. Real data: $GAITEDGE_DATA_ROOT or
# ../shared/data.
#
#   deploy/gpu_check.sh > gpu_check.json
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    echo "error: no CUDA GPU visible to torch ($PYTHON); this check needs one" >&2
    exit 2
fi
exec timeout 470 "$PYTHON" deploy/gpu_check.py
