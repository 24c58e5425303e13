#!/usr/bin/env bash
# Every GPU row of BENCHMARKS.md on a GPU machine, one JSON in $OUT (benchmarks/gpu_check.py).
# First, on a machine with PyPI: python benchmarks/gpu_check.py prepare (builds .devdata: wheels +
# FashionMNIST IDX); then copy .devdata/ beside the code on the GPU machine and run this there.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/isx-site .devdata/wheels/*.whl
export PYTHONPATH=/tmp/isx-site:$PWD PYTHONUNBUFFERED=1
data=/tmp/isx-tfds
python3 -m isx.prepare_data --dataset=fashion_mnist --idx_dir=.devdata/fashion-mnist --data_dir=$data
python3 benchmarks/gpu_check.py run --data_dir=$data --out="${OUT:-/tmp}/gpu_check.json" "$@"
