"""Tests for the urdu_characters import (isx.prepare_data) on a tiny fake manual folder."""

import collections

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from isx.datasets import urdu_characters

_CLASSES = ('zay', 'alif', 'bay')  # Unsorted on purpose.
_PER_CLASS = 6
# Mixed sizes, channels and formats; 64x64 gray images must pass unchanged.
_FILES = {'0.png': (64, 64, 1), '1.png': (64, 64, 3), '2.PNG': (64, 64, 1),
          '3.png': (40, 50, 1), '4.jpg': (80, 72, 3), '5.png': (64, 64, 4)}


@pytest.fixture(scope='module')
def manual_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('manual')
  rng = np.random.default_rng(0)
  for name in _CLASSES:
    (root / name).mkdir()
    for file_name, shape in _FILES.items():
      pixels = rng.integers(0, 256, shape, dtype=np.uint8)
      Image.fromarray(pixels.squeeze()).save(
          root / name / file_name, format='JPEG' if file_name.endswith('.jpg') else 'PNG')
    (root / name / 'notes.txt').write_text('ignored')
  return root


def _prepare(manual_dir, data_dir):
  return tfds.builder_from_directory(str(urdu_characters.prepare(data_dir, manual_dir)))


def _examples(data_dir, split):
  source = tfds.builder_from_directory(str(data_dir / 'urdu_characters' / '1.0.0')).as_data_source(
      split)
  return [source[i] for i in range(len(source))]


def _images_by_split(data_dir):
  """{split: sorted list of (label, image bytes)} via the normal TFDS path."""
  return {split: sorted((int(e['label']), e['image'].tobytes()) for e in _examples(data_dir, split))
          for split in ('train', 'test')}


@pytest.fixture(scope='module')
def prepared(manual_dir, tmp_path_factory):
  data_dir = tmp_path_factory.mktemp('tfds')
  _prepare(manual_dir, data_dir)
  return data_dir


def test_features(prepared):
  info = tfds.builder_from_directory(str(prepared / 'urdu_characters' / '1.0.0')).info
  assert info.features['image'].shape == (64, 64, 1)
  assert info.features['image'].np_dtype == np.uint8
  assert info.features['label'].names == sorted(_CLASSES)
  example = _examples(prepared, 'train')[0]
  assert example['image'].shape == (64, 64, 1) and example['image'].dtype == np.uint8


def test_stratified_split_holds_every_image_once(manual_dir, prepared):
  splits = _images_by_split(prepared)
  for split, num in (('train', 4), ('test', 2)):  # round(6 * 0.33) == 2.
    per_class = collections.Counter(label for label, _ in splits[split])
    assert per_class == {label: num for label in range(len(_CLASSES))}
  expected = sorted(
      (label, urdu_characters.load_image(manual_dir / name / f).tobytes())
      for label, name in enumerate(sorted(_CLASSES)) for f in _FILES)
  assert sorted(splits['train'] + splits['test']) == expected


def test_load_image(manual_dir):
  gray = np.asarray(Image.open(manual_dir / 'alif' / '0.png'))[..., None]
  np.testing.assert_array_equal(
      urdu_characters.load_image(manual_dir / 'alif' / '0.png'), gray)
  resized = urdu_characters.load_image(manual_dir / 'alif' / '3.png')
  assert resized.shape == (64, 64, 1) and resized.dtype == np.uint8


def test_deterministic(manual_dir, prepared, tmp_path):
  _prepare(manual_dir, tmp_path)
  assert _images_by_split(tmp_path) == _images_by_split(prepared)


def test_missing_class_images(tmp_path):
  (tmp_path / 'manual' / 'alif').mkdir(parents=True)
  (tmp_path / 'manual' / 'alif' / 'a.txt').write_text('not an image')
  with pytest.raises(ValueError, match=r"without .* images: \['alif'\]"):
    _prepare(tmp_path / 'manual', tmp_path / 'tfds')
