"""Writes uint8 image arrays as a TFDS dataset in the ArrayRecord format, without TensorFlow.

TFDS's `Image` feature needs TensorFlow to encode PNGs and `store_as_tfds_dataset` needs
`tf.data`, so isx writes raw `Tensor(uint8)` images through a GeneratorBasedBuilder instead.
The result is an ordinary prepared TFDS dataset (`DATA_DIR/NAME/VERSION/`) that
`tfds.builder_from_directory(...).as_data_source(split)` reads with random access.
"""
import contextlib
import io
import pathlib
import shutil
import tempfile
from typing import Iterable, Mapping

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

FILE_FORMAT = 'array_record'


def _features(image_shape, label_names):
  return tfds.features.FeaturesDict({
      'image': tfds.features.Tensor(shape=tuple(image_shape), dtype=np.uint8),
      'label': tfds.features.ClassLabel(names=list(label_names)),
  })


@contextlib.contextmanager
def _quiet_tfds():
  # TFDS announces "Downloading and preparing dataset Unknown size" and draws progress bars,
  # though isx only writes arrays it already holds; the callers print their own line.
  tfds.display_progress_bar(False)
  try:
    with contextlib.redirect_stdout(io.StringIO()):
      yield
  finally:
    tfds.display_progress_bar(True)


def write_dataset(name: str, version: str, data_dir, splits: Mapping[str, Iterable],
                  image_shape, label_names, description: str = '', overwrite: bool = False
                  ) -> pathlib.Path:
  """Stores `splits` ({split: iterable of (key, uint8 image, int label)}) as DATA_DIR/NAME/VERSION.

  Keys decide the on-disk order (TFDS sorts examples by a hash of the key), so the same keys
  give the same dataset order as TFDS's own builder. The dataset folder appears only once
  complete: TFDS writes into an `incomplete.*` folder and renames it.
  """
  features = _features(image_shape, label_names)

  class _Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version(version)

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, description=description, features=features,
                                   supervised_keys=('image', 'label'))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {split: self._generate_examples(examples) for split, examples in splits.items()}

    def _generate_examples(self, examples):
      for key, image, label in examples:
        yield key, {'image': np.asarray(image, np.uint8).reshape(image_shape), 'label': int(label)}

  _Builder.name = name
  path = pathlib.Path(data_dir) / name / version
  if overwrite:
    shutil.rmtree(path, ignore_errors=True)
  # TFDS makes a download dir; nothing goes there.
  with tempfile.TemporaryDirectory() as unused, _quiet_tfds():
    _Builder(data_dir=str(data_dir), file_format=FILE_FORMAT).download_and_prepare(
        download_dir=unused, download_config=tfds.download.DownloadConfig(verify_ssl=True))
  return path


def dataset_dir(name: str, data_dir) -> epath.Path | None:
  """DATA_DIR/NAME/VERSION of the newest complete version of `name`, or None. DATA_DIR may be
  remote (gs://...): TFDS reads such data dirs through etils.epath too."""
  root = epath.Path(data_dir) / name
  if not root.is_dir():
    return None
  versions = [p for p in root.iterdir() if (p / 'dataset_info.json').is_file()]
  key = lambda p: tuple(int(v) if v.isdigit() else -1 for v in p.name.split('.'))
  return max(versions, key=key) if versions else None


def split_sizes(name: str, data_dir) -> dict[str, int]:
  """Number of examples per split of the prepared dataset `name` in data_dir."""
  splits = tfds.builder_from_directory(str(dataset_dir(name, data_dir))).info.splits
  return {split: info.num_examples for split, info in splits.items()}


def replace_dataset(name: str, source_dir, data_dir) -> pathlib.Path:
  """Moves the dataset `name` from source_dir into data_dir, in place of the one there."""
  new = pathlib.Path(dataset_dir(name, source_dir))
  target = pathlib.Path(data_dir) / name / new.name
  shutil.rmtree(target, ignore_errors=True)
  target.parent.mkdir(parents=True, exist_ok=True)
  new.rename(target)
  return target
