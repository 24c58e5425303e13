#!/usr/bin/env bash
# The main job on a fresh machine, CPU is enough: venv -> real FashionMNIST -> train SimpleNet + IS
# -> evaluate -> print accuracy and Recall@K. Extra arguments go to isx.main, e.g.
#   bash scripts/quickstart.sh --config.num_epochs=3
# Data: Debian's dataset-fashion-mnist package (installed here when apt-get can, as root), else
# the four IDX files from the FashionMNIST site (needs internet). Either way isx.prepare_data
# writes them as an ArrayRecord TFDS dataset; nothing needs TensorFlow. WORKDIR and DATA_DIR may
# be set; defaults under ./workdirs.
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
    > /dev/null || echo "apt-get could not install dataset-fashion-mnist; downloading the IDX files" >&2
fi
if [[ ! -d $idx_dir ]]; then
  idx_dir=workdirs/fashion-mnist-idx
  mkdir -p "$idx_dir"
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [[ ! -f $idx_dir/$f.gz ]]; then  # .part first: an interrupted download is never used
      .venv/bin/python -c "import sys, urllib.request; urllib.request.urlretrieve(*sys.argv[1:])" \
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/$f.gz" "$idx_dir/$f.gz.part"
      mv "$idx_dir/$f.gz.part" "$idx_dir/$f.gz"
    fi
  done
fi
.venv/bin/python -m isx.prepare_data --dataset=fashion_mnist --idx_dir="$idx_dir" --data_dir="$data_dir"
.venv/bin/python -m isx.main --config=configs/fashion_mnist_simplenet.py --workdir="$workdir" \
  --config.dataset.data_dir="$data_dir" --config.num_epochs=1 --config.log_every_steps=100 "$@" \
  2>&1 | grep -v -E '^(I|W)[0-9]{4} ' || exit 1
echo "metrics: $workdir/eval/metrics.json  embeddings: $workdir/eval/embeddings.npz  plots: $workdir/*.png"
