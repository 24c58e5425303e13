r"""Writes a dataset as an ArrayRecord TFDS dataset (no TensorFlow), ahead of training: its plug-in's
prepare (isx/datasets/NAME.py), with the settings given here.

  python -m isx.prepare_data --dataset=fashion_mnist \
      --idx_dir=/usr/share/datasets/fashion-mnist --data_dir=/data/tfds
  python -m isx.prepare_data --dataset=urdu_characters --manual_dir=URDU --data_dir=/data/tfds
  python -m isx.prepare_data --dataset=glyphs --data_dir=/data/tfds   # fonts: Debian's or --font_dir
  python -m isx.prepare_data --dataset=cifar10 --data_dir=/data/tfds   # downloads it
"""

import os
import tempfile
import time

from absl import app
from absl import flags

from isx import cli, datasets, errors
from isx.datasets import idx, store

_DATASET = flags.DEFINE_string('dataset', 'fashion_mnist', 'Dataset to write: isx/datasets/NAME.py '
                               'or a module path.')
_IDX_DIR = flags.DEFINE_string(
    'idx_dir', None, 'mnist / fashion_mnist: folder with {train,t10k}-{images-idx3,labels-idx1}'
    '-ubyte files, raw or .gz.')
_MANUAL_DIR = flags.DEFINE_string(
    'manual_dir', None, 'urdu_characters: folder with one sub-folder of images per class.')
_FONT_DIR = flags.DEFINE_string(
    'font_dir', None, 'glyphs: a folder of .ttf/.otf fonts, instead of Debian\'s font packages.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir to write to.', required=True)
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Rebuild even if the dataset already exists.')
_CONFIGS = {'fashion_mnist': 'fashion_mnist_simplenet', 'mnist': 'mnist_simplenet',
            'cifar10': 'cifar10_simplenet', 'cifar100': 'cifar100_googlenet',
            'svhn_cropped': 'svhn_simplenet', 'urdu_characters': 'urdu_simplenet',
            'glyphs': 'glyphs_simplenet'}


def prepare(name: str, data_dir: str, overwrite: bool):
  """Runs the plug-in's prepare with the settings given as flags. To overwrite, it writes into a
  temporary folder first and replaces the old dataset only once the new one is complete."""
  given = {k: v for k, v in (('idx_dir', _IDX_DIR.value), ('manual_dir', _MANUAL_DIR.value),
                                          ('font_dir', _FONT_DIR.value)) if v}
  settings = datasets.settings(datasets.resolve({'name': name, **given}))
  stored = name.rsplit('.', 1)[-1]
  if not overwrite:
    datasets.load(name)(data_dir, **settings)
    return store.dataset_dir(stored, data_dir)
  os.makedirs(data_dir, exist_ok=True)
  with tempfile.TemporaryDirectory(prefix=f'.{stored}-', dir=data_dir) as fresh:
    datasets.load(name)(fresh, **settings)
    return store.replace_dataset(stored, fresh, data_dir)


def main(argv):
  cli.run(argv, _prepare_data)


def _prepare_data():
  if not _DATA_DIR.value.strip():  # an unset shell variable: would write into this folder
    cli.fail('--data_dir must not be empty: name the TFDS data dir to write, e.g. '
             '--data_dir=workdirs/tfds')
  name, data_dir = _DATASET.value, os.path.abspath(_DATA_DIR.value)
  stored = name.rsplit('.', 1)[-1]
  try:
    if store.dataset_dir(stored, data_dir) and not _OVERWRITE.value:
      print(f'{name} is already in {data_dir}; pass --overwrite to rebuild it.')
    else:
      start = time.time()
      path = prepare(name, data_dir, _OVERWRITE.value)
      print(f'Wrote {path} in {time.time() - start:.0f} s.')
  except (idx.PrepareDataError, errors.UserError) as e:  # a font dir that is a file: not --data_dir
    cli.fail(e)
  except OSError as e:
    if isinstance(e, FileNotFoundError) and e.filename is None:  # a plug-in's "how to" message
      cli.fail(e)
    cli.fail(f'cannot write {data_dir} ({e.strerror or e}); choose another --data_dir')
  sizes = store.split_sizes(stored, data_dir)
  config = _CONFIGS.get(name)
  command = (f'--config=configs/{config}.py --workdir=workdirs/{config}' if config else
             f'--config=configs/default.py --config.dataset.name={name} --workdir=workdirs/{stored}')
  print(f'{name}: ' + ', '.join(f'{s}={n}' for s, n in sizes.items()) +
        f'. Train on it with:\n  python -m isx.main {command} --config.dataset.data_dir={data_dir}')


if __name__ == '__main__':
  app.run(main)
