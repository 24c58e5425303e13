"""Datasets by name: config.dataset.name 'fashion_mnist' is isx/datasets/fashion_mnist.py, or any
module path (my_lab.bars). A dataset module defines `prepare(data_dir, **settings)`, which writes
the ArrayRecord TFDS dataset DATA_DIR/<its last name> (isx.datasets.store.write_dataset); isx
calls it when the dataset is missing there and dataset.download is True. Its keyword arguments
with defaults are its settings, config.dataset.<setting> (mnist's idx_dir, urdu_characters'
manual_dir). Optional: HOW_TO_PREPARE, what to do when isx cannot prepare it ({root}: the data
dir); IMAGE_SHAPE, the shape the pipeline feeds when the images vary (ImageNet); STREAMED, when
the train split is read from disk at each step instead of held in memory.

The other modules here are the shared code (download, IDX import, TFDS storage). Kept
import-light: TFDS is imported only where a dataset is read or written.
"""
from isx import registry

# config.dataset's own fields, read by isx for every dataset; the others are the plug-in's.
CORE = ('name', 'data_dir', 'train_split', 'eval_split', 'standardize', 'augment',
        'test_time_flip', 'device_resident', 'num_workers', 'download', 'classes',
        'validation_classes', 'validation_fraction', 'validation_fold')


def load(name: str):
  return registry.load('datasets', name, 'prepare')


def module(name: str):
  return registry.module_of(load(name))


def defaults(dataset) -> dict:
  """The dataset plug-in's settings at their defaults."""
  return registry.settings(load(dataset['name']))


def resolve(dataset, info=None) -> dict:
  """config.dataset with its plug-in's settings checked and filled in; one line on an unknown
  dataset or setting."""
  del info
  name = dataset['name']
  given = {k: v for k, v in dataset.items() if k not in CORE}
  core = {k: v for k, v in dataset.items() if k in CORE}
  return {**core, **registry.resolve(f'dataset {name!r} (config.dataset)', load(name), given)}


def settings(dataset) -> dict:
  """The plug-in's own settings of a resolved config.dataset, as its prepare takes them."""
  return {k: v for k, v in dataset.items() if k not in CORE}
