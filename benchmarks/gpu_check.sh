#!/usr/bin/env bash
# The GPU check (issue 12.6), for a machine with a CUDA device: the gpu-marked
# tests, then GPU figures with CPU figures beside them (benchmarks/gpu_check.py).
# Budget: under 8 minutes. Record the printed table in docs/results.rst.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" || exit 1
echo "== gpu tests"
timeout 180 "$PY" -m pytest -q -m gpu -p no:cacheprovider
echo "== figures"
timeout 300 "$PY" benchmarks/gpu_check.py --device cuda "$@"
