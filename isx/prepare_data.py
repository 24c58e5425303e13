r"""Writes a dataset that cannot be downloaded here as an ArrayRecord TFDS dataset (no TensorFlow).

  python -m isx.prepare_data --dataset=fashion_mnist \
      --idx_dir=/usr/share/datasets/fashion-mnist --data_dir=/data/tfds
  python -m isx.prepare_data --dataset=urdu_characters --manual_dir=URDU --data_dir=/data/tfds
"""

import os
import time

from absl import app
from absl import flags

from isx import cli
from isx.datasets import idx, store, urdu_characters

_DATASETS = (*idx.DATASETS, urdu_characters.NAME)
_DATASET = flags.DEFINE_enum('dataset', 'fashion_mnist', _DATASETS, 'Dataset to write.')
_IDX_DIR = flags.DEFINE_string(
    'idx_dir', None, 'mnist / fashion_mnist: folder with {train,t10k}-{images-idx3,labels-idx1}'
    '-ubyte files, raw or .gz.')
_MANUAL_DIR = flags.DEFINE_string(
    'manual_dir', None, 'urdu_characters: folder with one sub-folder of images per class.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir to write to.', required=True)
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Rebuild even if the dataset already exists.')


def prepare(name: str, data_dir: str, overwrite: bool):
  if name == urdu_characters.NAME:
    if not _MANUAL_DIR.value:
      raise idx.PrepareDataError('urdu_characters needs --manual_dir (one folder per class)')
    try:
      return urdu_characters.prepare(_MANUAL_DIR.value, data_dir, overwrite)
    except (OSError, ValueError) as e:
      raise idx.PrepareDataError(str(e)) from None
  if not _IDX_DIR.value:
    raise idx.PrepareDataError(f'{name} needs --idx_dir (the four IDX files)')
  return idx.prepare_idx_dataset(name, _IDX_DIR.value, data_dir, overwrite=overwrite)


def main(argv):
  del argv
  if not _DATA_DIR.value.strip():  # an unset shell variable: would write into this folder
    cli.fail('--data_dir must not be empty: name the TFDS data dir to write, e.g. '
             '--data_dir=workdirs/tfds')
  name, data_dir = _DATASET.value, os.path.abspath(_DATA_DIR.value)
  try:
    if store.dataset_dir(name, data_dir) and not _OVERWRITE.value:
      print(f'{name} is already in {data_dir}; pass --overwrite to rebuild it.')
    else:
      start = time.time()
      path = prepare(name, data_dir, _OVERWRITE.value)
      print(f'Wrote {path} in {time.time() - start:.0f} s.')
  except idx.PrepareDataError as e:
    cli.fail(e)
  except OSError as e:  # e.g. an unwritable --data_dir
    cli.fail(f'cannot write {data_dir} ({e.strerror or e}); choose another --data_dir')
  except cli.USER_ERRORS as e:
    cli.fail(e)
  sizes = store.split_sizes(name, data_dir)
  config = {'fashion_mnist': 'fashion_mnist_simplenet', 'mnist': 'mnist_simplenet'}.get(
      name, 'urdu_simplenet')
  print(f'{name}: ' + ', '.join(f'{s}={n}' for s, n in sizes.items()) +
        '. Train on it with:\n  python -m isx.main '
        f'--config=configs/{config}.py --workdir=workdirs/{config} '
        f'--config.dataset.data_dir={data_dir}')


if __name__ == '__main__':
  app.run(main)
