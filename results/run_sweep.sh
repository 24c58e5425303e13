#!/usr/bin/env bash
# Runs a sweep grid with WORKERS parallel processes on one machine (CPU, or one GPU shared by
# all: SimpleNet on FashionMNIST is far too small to fill a GPU alone).
#   WORKERS=8 bash results/run_sweep.sh results/grids/fashion_mnist_default.json DATA_DIR OUT_DIR
set -euo pipefail
grid=${1:?usage: run_sweep.sh GRID.json DATA_DIR OUT_DIR}
data=${2:?TFDS data dir holding fashion_mnist (python -m isx.prepare_data ...)}
out=${3:?output folder}
workers=${WORKERS:-2}
python=${PYTHON:-python3}
mkdir -p "$out"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several processes share one GPU
for ((i = 0; i < workers; i++)); do
  "$python" -m isx.sweep --config=configs/fashion_mnist_simplenet.py \
    --config.dataset.data_dir="$data" --grid="$grid" --shard="$i/$workers" --out="$out" \
    > "$out/worker_$i.log" 2>&1 &
done
wait
