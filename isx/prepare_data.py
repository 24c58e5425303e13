r"""Imports local MNIST/FashionMNIST IDX files as a TFDS dataset (no internet).

  python -m isx.prepare_data --dataset=fashion_mnist \
      --idx_dir=/usr/share/datasets/fashion-mnist --data_dir=/data/tfds
"""

import os
import time

from absl import app
from absl import flags

from isx.datasets import idx

_DATASET = flags.DEFINE_enum('dataset', 'fashion_mnist', idx.DATASETS,
                             'TFDS name of the dataset to import.')
_IDX_DIR = flags.DEFINE_string(
    'idx_dir', None, 'Folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte'
    ' files, raw or .gz.', required=True)
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'TFDS data dir to write to.', required=True)
_OVERWRITE = flags.DEFINE_bool(
    'overwrite', False, 'Rebuild even if the dataset already exists.')


def main(argv):
  del argv
  name, data_dir = _DATASET.value, os.path.abspath(_DATA_DIR.value)
  try:
    if idx.is_prepared(name, data_dir) and not _OVERWRITE.value:
      print(f'{name} is already in {data_dir}; pass --overwrite to rebuild it.')
    else:
      start = time.time()
      path = idx.prepare_idx_dataset(name, _IDX_DIR.value, data_dir,
                                     overwrite=_OVERWRITE.value)
      print(f'Wrote {path} in {time.time() - start:.0f} s.')
  except idx.PrepareDataError as e:
    raise SystemExit(f'error: {e}') from None
  sizes = idx.split_sizes(name, data_dir)
  print(f'{name}: ' + ', '.join(f'{s}={n}' for s, n in sizes.items()) +
        '. Train on it with:\n  python -m isx.main '
        f'--config=configs/{name}_simplenet.py --workdir=workdirs/{name}_simplenet'
        f' --config.dataset.data_dir={data_dir}')


if __name__ == '__main__':
  app.run(main)
