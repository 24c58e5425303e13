"""CIFAR-100 (Krizhevsky 2009): 32x32 colour, 100 classes, 50k train / 10k test, under TFDS's name,
version, class names and order, downloaded from the official source files (isx.datasets.sources)."""
from isx.datasets import sources

HOW_TO_PREPARE = sources.HOW_TO_PREPARE


def prepare(data_dir):
  return sources.download_and_prepare('cifar100', data_dir, HOW_TO_PREPARE.format(root=data_dir))
