"""SVHN cropped digits (Netzer et al. 2011): 32x32 colour, 73k train / 26k test (no extra), under TFDS's name,
version, class names and order, downloaded from the official source files (isx.datasets.sources)."""
from isx.datasets import sources

HOW_TO_PREPARE = sources.HOW_TO_PREPARE


def prepare(data_dir):
  return sources.download_and_prepare('svhn_cropped', data_dir, HOW_TO_PREPARE.format(root=data_dir))
