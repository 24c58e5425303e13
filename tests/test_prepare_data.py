"""Tests for importing IDX files as TFDS datasets (hermetic, no network)."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from isx.datasets import idx, store

import idx_files  # tests/

_REPO = pathlib.Path(__file__).resolve().parents[1]
_SIZES = {'train': 20, 'test': 8}
_PREFIXES = {'train': 'train', 'test': 't10k'}


def _write_idx_dir(path, gz, seed=0):
  """Writes tiny random IDX files; returns {split: (images, labels)}."""
  rng = np.random.default_rng(seed)
  path.mkdir(parents=True, exist_ok=True)
  suffix = '.gz' if gz else ''
  arrays = {}
  for split, n in _SIZES.items():
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    idx_files.write_idx(path / f'{_PREFIXES[split]}-images-idx3-ubyte{suffix}', images)
    idx_files.write_idx(path / f'{_PREFIXES[split]}-labels-idx1-ubyte{suffix}', labels)
    arrays[split] = images, labels
  return arrays


def _sorted_examples(images, labels):
  return sorted((im.tobytes(), int(l)) for im, l in zip(images, labels))


def _builder(name, data_dir):
  return tfds.builder_from_directory(str(data_dir / name / idx.VERSION))


def _load_sorted(name, split, data_dir):
  source = _builder(name, data_dir).as_data_source(split)
  examples = [source[i] for i in range(len(source))]
  return _sorted_examples([e['image'][..., 0] for e in examples],
                          [e['label'] for e in examples])


@pytest.mark.parametrize('gz', [True, False])
def test_roundtrip_through_tfds_data_source(tmp_path, gz):
  arrays = _write_idx_dir(tmp_path / 'idx', gz)
  data_dir = tmp_path / 'tfds'
  path = idx.prepare_idx_dataset('fashion_mnist', tmp_path / 'idx', data_dir)

  assert path == data_dir / 'fashion_mnist' / '3.0.1'
  features = _builder('fashion_mnist', data_dir).info.features
  assert features['image'].shape == (28, 28, 1)
  assert features['label'].names[0] == 'T-shirt/top'
  for split, (images, labels) in arrays.items():
    assert _load_sorted('fashion_mnist', split, data_dir) == _sorted_examples(
        images, labels)


def test_is_idempotent_and_overwrites(tmp_path):
  old = _write_idx_dir(tmp_path / 'idx', gz=True)['test']
  data_dir = tmp_path / 'tfds'
  idx.prepare_idx_dataset('mnist', tmp_path / 'idx', data_dir)
  assert idx.is_prepared('mnist', data_dir)
  new = _write_idx_dir(tmp_path / 'idx', gz=True, seed=1)['test']

  idx.prepare_idx_dataset('mnist', tmp_path / 'idx', data_dir)
  assert _load_sorted('mnist', 'test', data_dir) == _sorted_examples(*old)

  idx.prepare_idx_dataset('mnist', tmp_path / 'idx', data_dir, overwrite=True)
  assert _load_sorted('mnist', 'test', data_dir) == _sorted_examples(*new)
  assert store.split_sizes('mnist', data_dir) == _SIZES


def test_read_idx_roundtrip(tmp_path):
  array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
  for name in ('a', 'a.gz'):
    idx_files.write_idx(tmp_path / name, array)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / name), array)


def test_missing_file_names_file_and_dir(tmp_path):
  _write_idx_dir(tmp_path, gz=False)
  (tmp_path / 't10k-labels-idx1-ubyte').unlink()
  with pytest.raises(idx.PrepareDataError,
                     match=f't10k-labels-idx1-ubyte.*{tmp_path}.*apt-get'):
    idx.prepare_idx_dataset('fashion_mnist', tmp_path, tmp_path / 'tfds')


@pytest.mark.parametrize('content, error', [
    (b'\x00\x00\x0d\x03' + bytes(12), 'bad magic'),
    (b'\x00\x00\x08\x03\x00\x00', 'truncated'),
    (b'\x00\x00\x08\x01\x00\x00\x00\x05' + bytes(4), 'truncated'),
    (b'\x1f\x8b\x08\x00junk', 'corrupt'),
])
def test_corrupt_files(tmp_path, content, error):
  name = 'f.gz' if content.startswith(b'\x1f\x8b') else 'f'
  (tmp_path / name).write_bytes(content)
  with pytest.raises(idx.PrepareDataError, match=error):
    idx.read_idx(tmp_path / name)


def test_mismatched_counts(tmp_path):
  _write_idx_dir(tmp_path, gz=False)
  idx_files.write_idx(tmp_path / 'train-labels-idx1-ubyte', np.zeros(3, np.uint8))
  with pytest.raises(idx.PrepareDataError, match='do not belong together'):
    idx.read_split('mnist', tmp_path, 'train')


def test_unknown_dataset_lists_choices(tmp_path):
  with pytest.raises(idx.PrepareDataError, match='fashion_mnist, mnist'):
    idx.prepare_idx_dataset('cifar10', tmp_path, tmp_path / 'tfds')


def _cli(*args):
  env = dict(os.environ, PYTHONPATH=str(_REPO))
  return subprocess.run([sys.executable, '-m', 'isx.prepare_data', *args],
                        capture_output=True, text=True, env=env, check=False)


def test_cli(tmp_path):
  _write_idx_dir(tmp_path / 'idx', gz=True)
  data_dir = tmp_path / 'tfds'
  args = ['--dataset=fashion_mnist', f'--idx_dir={tmp_path / "idx"}',
          f'--data_dir={data_dir}']
  result = _cli(*args)
  assert result.returncode == 0, result.stderr
  assert 'train=20, test=8' in result.stdout
  assert f'--config.dataset.data_dir={data_dir}' in result.stdout
  # isx's own lines only: no TFDS "Downloading and preparing dataset Unknown size" or bars.
  assert 'Downloading' not in result.stdout + result.stderr
  assert 'examples/s' not in result.stderr

  assert 'already' in _cli(*args).stdout

  result = _cli('--dataset=mnist', f'--idx_dir={tmp_path}',
                f'--data_dir={data_dir}')
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith(
      'error: train-images-idx3-ubyte[.gz] not found in')
  assert 'Traceback' not in result.stderr


def test_cli_empty_files_and_unwritable_data_dir_fail_in_one_line(tmp_path):
  _write_idx_dir(tmp_path / 'idx', gz=False)
  blocker = tmp_path / 'a_file'
  blocker.write_text('')
  result = _cli('--dataset=mnist', f'--idx_dir={tmp_path / "idx"}', f'--data_dir={blocker / "x"}')
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith('error: cannot write')
  idx_files.write_idx(tmp_path / 'idx' / 'train-images-idx3-ubyte', np.zeros((0, 28, 28), np.uint8))
  idx_files.write_idx(tmp_path / 'idx' / 'train-labels-idx1-ubyte', np.zeros(0, np.uint8))
  result = _cli('--dataset=mnist', f'--idx_dir={tmp_path / "idx"}', f'--data_dir={tmp_path / "d"}')
  assert result.returncode == 1 and 'holds no images' in result.stderr


def test_cli_glyphs_bad_font_dir_is_named_not_the_data_dir(tmp_path):
  blocker = tmp_path / 'fonts.ttf'
  blocker.write_text('')
  result = _cli('--dataset=glyphs', f'--font_dir={blocker}', f'--data_dir={tmp_path / "d"}')
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f'error: --font_dir {blocker} is a file: give the folder that holds the fonts')
