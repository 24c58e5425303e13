"""Import MNIST-style IDX files as a TFDS dataset, for machines without internet.

The result is stored under the name, version, class names and example order of
TFDS's own builder, in the ArrayRecord format with raw uint8 images, so it is
written and read without TensorFlow (see isx.datasets.store). We import the IDX
arrays rather than faking TFDS's download cache because other distributions
(e.g. Debian's) ship .gz files whose bytes differ from TFDS's checksums.
"""

import gzip
import math
import pathlib
import struct
import zlib

import numpy as np

from isx import errors
from isx.datasets import store

_UBYTE = 0x08  # IDX type code for unsigned bytes, the only type MNIST uses.
_IMAGE_SHAPE = (28, 28)
_NUM_CLASSES = 10
_SPLIT_PREFIXES = {'train': 'train', 'test': 't10k'}

# How to obtain the IDX files, per supported dataset.
_HOW_TO_GET = {
    'fashion_mnist': (
        'On Debian: `apt-get install dataset-fashion-mnist` (files land in '
        '/usr/share/datasets/fashion-mnist); else download them from '
        'https://github.com/zalandoresearch/fashion-mnist'),
    'mnist': (
        'Download them from https://storage.googleapis.com/cvdf-datasets/mnist/'
        " (TFDS's source)"),
}
DATASETS = tuple(sorted(_HOW_TO_GET))
VERSION = '3.0.1'  # TFDS's version of both datasets
LABEL_NAMES = {  # TFDS's class names
    'mnist': [str(i) for i in range(10)],
    'fashion_mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
                      'Sneaker', 'Bag', 'Ankle boot'],
}


class PrepareDataError(errors.UserError, ValueError):
  """A user-fixable problem with the inputs; the message says what to do."""


def read_idx(path) -> np.ndarray:
  """Reads an uncompressed or gzipped (by file name) IDX file of uint8s."""
  path = pathlib.Path(path)
  opener = gzip.open if path.suffix == '.gz' else open
  try:
    with opener(path, 'rb') as f:
      data = f.read()
  except (OSError, EOFError, zlib.error) as e:  # Bad or truncated gzip stream.
    raise PrepareDataError(
        f'{path} is corrupt ({e}); delete it and fetch it again') from None
  if len(data) < 4 or data[:3] != bytes([0, 0, _UBYTE]):
    raise PrepareDataError(
        f'{path} is not a uint8 IDX file (bad magic number {data[:4].hex()});'
        ' check the file, or whether it was decompressed under a .gz name')
  ndim = data[3]
  offset = 4 + 4 * ndim
  truncated = PrepareDataError(
      f'{path} is truncated or corrupt (its size does not match its header);'
      ' fetch it again')
  if len(data) < offset:
    raise truncated
  shape = struct.unpack(f'>{ndim}I', data[4:offset])
  if len(data) != offset + math.prod(shape):
    raise truncated
  return np.frombuffer(data, np.uint8, offset=offset).reshape(shape)


def _find(idx_dir: pathlib.Path, stem: str, dataset: str) -> pathlib.Path:
  for candidate in (idx_dir / stem, idx_dir / f'{stem}.gz'):
    if candidate.is_file():
      return candidate
  raise PrepareDataError(
      f'{stem}[.gz] not found in {idx_dir}; --idx_dir must hold the four '
      f'{dataset} IDX files. {_HOW_TO_GET[dataset]}')


def read_split(dataset: str, idx_dir, split: str):
  """Returns validated (images [N, 28, 28], labels [N]) uint8 arrays."""
  idx_dir = pathlib.Path(idx_dir)
  prefix = _SPLIT_PREFIXES[split]
  images_path = _find(idx_dir, f'{prefix}-images-idx3-ubyte', dataset)
  labels_path = _find(idx_dir, f'{prefix}-labels-idx1-ubyte', dataset)
  images, labels = read_idx(images_path), read_idx(labels_path)
  if images.ndim != 3 or images.shape[1:] != _IMAGE_SHAPE:
    raise PrepareDataError(
        f'{images_path} holds shape {images.shape}, expected '
        f'[N, {_IMAGE_SHAPE[0]}, {_IMAGE_SHAPE[1]}]; is it the right file?')
  if labels.ndim != 1 or len(labels) != len(images):
    raise PrepareDataError(
        f'{labels_path} holds shape {labels.shape} but {images_path.name} has '
        f'{len(images)} images; the two files do not belong together')
  if not len(images):
    raise PrepareDataError(f'{images_path} holds no images; is it the right file?')
  if labels.max() >= _NUM_CLASSES:
    raise PrepareDataError(
        f'{labels_path} has label {labels.max()}, expected 0..'
        f'{_NUM_CLASSES - 1}; is it the right file?')
  return images, labels


def _check_name(name: str):
  if name not in DATASETS:
    raise PrepareDataError(
        f'unknown dataset {name!r}; choose one of {", ".join(DATASETS)}')


def is_prepared(name: str, data_dir) -> bool:
  """Whether DATA_DIR holds a complete `name` dataset that isx can read."""
  _check_name(name)
  return store.dataset_dir(name, data_dir) is not None


def _examples(images, labels):
  # Same keys as TFDS's mnist builder, hence the same shuffled file order.
  for index, (image, label) in enumerate(zip(images, labels)):
    yield index, image[..., None], label


def prepare_idx_dataset(name: str, idx_dir, data_dir, overwrite: bool = False
                        ) -> pathlib.Path:
  """Stores IDX files of `name` (mnist, fashion_mnist) as an ArrayRecord TFDS dataset.

  Args:
    name: TFDS name of the dataset, one of `DATASETS`.
    idx_dir: folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
    data_dir: TFDS data dir to write into.
    overwrite: rebuild even if the dataset is already prepared there.

  Returns:
    The dataset's folder, `data_dir/name/version`.

  Raises:
    PrepareDataError: unknown name, or missing, corrupt or mismatched files.
  """
  _check_name(name)
  if is_prepared(name, data_dir) and not overwrite:
    return store.dataset_dir(name, data_dir)
  # Read everything before deleting anything, so a bad file loses no data.
  splits = {split: read_split(name, idx_dir, split) for split in _SPLIT_PREFIXES}
  return store.write_dataset(
      name, VERSION, data_dir, {s: _examples(*arrays) for s, arrays in splits.items()},
      image_shape=(*_IMAGE_SHAPE, 1), label_names=LABEL_NAMES[name],
      description=f'{name} imported from IDX files by isx.prepare_data', overwrite=overwrite)
