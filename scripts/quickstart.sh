#!/usr/bin/env bash
# The main job on a fresh machine, CPU is enough: venv -> real FashionMNIST -> train SimpleNet + IS
# -> evaluate -> print accuracy and Recall@K. Extra arguments go to isx.main, e.g.
#   bash scripts/quickstart.sh --config.num_epochs=3
# Data: Debian's dataset-fashion-mnist package (installed here when apt-get can, as root), imported
# by isx.prepare_data; else isx.main downloads FashionMNIST itself (needs internet). Either way it
# becomes an ArrayRecord TFDS dataset; nothing needs TensorFlow. WORKDIR and DATA_DIR may be set;
# defaults under ./workdirs.
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=${WORKDIR:-workdirs/quickstart}
data_dir=${DATA_DIR:-workdirs/tfds}
idx_dir=/usr/share/datasets/fashion-mnist

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
  .venv/bin/pip install -q -r requirements.txt -e .
fi
if [[ ! -d $idx_dir && $(id -u) == 0 ]] && command -v apt-get > /dev/null; then
  (apt-get install -y -q dataset-fashion-mnist || (apt-get update -q && apt-get install -y -q dataset-fashion-mnist)) \
    > /dev/null || echo "apt-get could not install dataset-fashion-mnist; isx.main will download it" >&2
fi
if [[ -d $idx_dir ]]; then  # offline route; online, isx.main downloads FashionMNIST by itself
  .venv/bin/python -m isx.prepare_data --dataset=fashion_mnist --idx_dir="$idx_dir" --data_dir="$data_dir"
fi
.venv/bin/python -m isx.main --config=configs/fashion_mnist_simplenet.py --workdir="$workdir" \
  --config.dataset.data_dir="$data_dir" --config.num_epochs=1 --config.log_every_steps=100 "$@" \
  2>&1 | grep -v -E '^(I|W)[0-9]{4} ' || exit 1
echo "metrics: $workdir/eval/metrics.json  embeddings: $workdir/eval/embeddings.npz  plots: $workdir/*.png"
