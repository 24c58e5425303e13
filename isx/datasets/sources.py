"""TF-free builders for the paper's downloadable datasets: mnist, fashion_mnist, cifar10,
cifar100 and svhn_cropped.

Each reads the official source files that TFDS's own builder downloads, checked against the
URLs, sizes and sha256 sums that TFDS ships (read from the installed tensorflow_datasets), and
writes an ArrayRecord TFDS dataset with TFDS's name, version, splits, class names and example
keys (hence order) through isx.datasets.store. Differences from TFDS: raw uint8 `Tensor`
images instead of PNG-encoded ones, no `id` / `coarse_label` fields, and svhn_cropped without
its 1.3 GB `extra` split, which the paper does not use.

ISX_DATASET_SOURCES=FILE.json overrides the sources ({name: [[url, size, sha256, filename],
...]}): a local mirror, or the tests' loopback server.
"""
import importlib.resources
import json
import os
import shutil
import tarfile
import tempfile

import numpy as np

from isx.datasets import download, idx, store

HOW_TO_PREPARE = ('online, isx downloads it when dataset.download is True (the default); offline: '
                  'put it in {root} from a machine that has it (docs/data.md)')
VERSIONS = {'mnist': '3.0.1', 'fashion_mnist': '3.0.1', 'cifar10': '3.0.2', 'cifar100': '3.0.2',
            'svhn_cropped': '3.1.0'}  # TFDS's
DATASETS = tuple(VERSIONS)
_CHECKSUMS = {'mnist': 'url_checksums/mnist.txt', 'fashion_mnist': 'url_checksums/fashion_mnist.txt',
              'cifar10': 'url_checksums/cifar10.txt', 'cifar100': 'url_checksums/cifar100.txt',
              'svhn_cropped': 'datasets/svhn_cropped/checksums.tsv'}
_SKIPPED = {'extra_32x32.mat'}
_CIFAR = {  # archive folder, {split: files}, label-names file, label bytes before each image
    'cifar10': ('cifar-10-batches-bin', {'train': [f'data_batch_{i}.bin' for i in range(1, 6)],
                                         'test': ['test_batch.bin']}, 'batches.meta.txt', 1),
    'cifar100': ('cifar-100-binary', {'train': ['train.bin'], 'test': ['test.bin']},
                 'fine_label_names.txt', 2),  # coarse, then fine: the fine one is `label`
}


def remote_files(name: str) -> list[download.RemoteFile]:
  """The source files of `name`: TFDS's URLs and checksums, or ISX_DATASET_SOURCES's."""
  override = os.environ.get('ISX_DATASET_SOURCES')
  if override:
    with open(override) as f:
      rows = json.load(f).get(name)
    if rows is not None:
      return [download.RemoteFile(url, int(size), sha, fn) for url, size, sha, fn in rows]
  text = (importlib.resources.files('tensorflow_datasets') / _CHECKSUMS[name]).read_text()
  files = [download.RemoteFile(url, int(size), sha, fn) for url, size, sha, fn in
           (line.split('\t') for line in text.splitlines() if line.strip())]
  return [f for f in files if f.filename not in _SKIPPED]


def _cifar_splits(name: str, archive: str):
  folder, split_files, names_file, num_labels = _CIFAR[name]
  record = num_labels + 32 * 32 * 3
  with tarfile.open(archive) as tar:
    read = lambda member: tar.extractfile(f'{folder}/{member}').read()
    label_names = [n for n in read(names_file).decode().split('\n') if n.strip()]
    splits = {}
    for split, files in split_files.items():
      data = np.frombuffer(b''.join(read(f) for f in files), np.uint8).reshape(-1, record)
      images = data[:, num_labels:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # CHW -> HWC
      splits[split] = (images, data[:, num_labels - 1])
  return splits, label_names


def _svhn_splits(paths: dict):
  from scipy import io  # a JAX dependency
  splits = {}
  for split in ('train', 'test'):
    mat = io.loadmat(paths[f'{split}_32x32.mat'])
    splits[split] = (np.moveaxis(mat['X'], -1, 0), mat['y'].reshape(-1) % 10)  # 10 means digit 0
  return splits, [str(i) for i in range(10)]


def _write(name: str, folder: str, data_dir: str):
  paths = {f: os.path.join(folder, f) for f in os.listdir(folder)}
  if name in idx.DATASETS:  # the offline IDX import (isx.prepare_data) is the same code
    return idx.prepare_idx_dataset(name, folder, data_dir)
  if name in _CIFAR:
    (archive,) = paths.values()
    splits, label_names = _cifar_splits(name, archive)
  else:
    splits, label_names = _svhn_splits(paths)
  examples = lambda images, labels: ((i, im, lb) for i, (im, lb) in enumerate(zip(images, labels)))
  return store.write_dataset(name, VERSIONS[name], data_dir,
                             {s: examples(*arrays) for s, arrays in splits.items()},
                             image_shape=splits['train'][0].shape[1:], label_names=label_names,
                             description=f'{name} from its official source files, by isx')


def download_and_prepare(name: str, data_dir: str, offline_hint: str):
  """Downloads `name`'s source files and writes the dataset into data_dir; returns its folder.

  One process per data_dir does it (download.Lock); the others wait and then read what it
  wrote. The downloads go to a temporary folder in data_dir that is removed at the end, so a
  failure leaves nothing behind but what data_dir held before.
  """
  if '://' in str(data_dir):
    raise download.DownloadError(f'isx downloads only into a local data_dir, not {data_dir}; '
                                 f'prepare {name} locally and copy it there')
  os.makedirs(data_dir, exist_ok=True)
  while store.dataset_dir(name, data_dir) is None:
    lock = download.Lock(os.path.join(data_dir, f'.{name}.isx-lock'))
    with lock as held:
      if not held or store.dataset_dir(name, data_dir) is not None:
        continue  # another process prepared it (or failed: then try here)
      folder = tempfile.mkdtemp(prefix=f'.{name}-download-', dir=data_dir)
      try:
        files = remote_files(name)
        print(f'downloading {name} ({sum(f.size for f in files) / 2**20:.0f} MiB) into '
              f'{data_dir}', flush=True)
        for remote in files:
          download.fetch(remote, folder, offline_hint, on_progress=lock.touch)
        _write(name, folder, data_dir)
      finally:
        shutil.rmtree(folder, ignore_errors=True)
  return store.dataset_dir(name, data_dir)
