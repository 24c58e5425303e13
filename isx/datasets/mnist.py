"""MNIST (LeCun et al. 1998): 28x28 grey digits, 60k train / 10k test, under TFDS's name, version,
class names and order: downloaded from TFDS's sources, or imported from IDX files (idx_dir)."""
from isx.datasets import idx, sources

HOW_TO_PREPARE = ('offline: give a folder of its four IDX files, --config.dataset.idx_dir=DIR, or '
                  'python -m isx.prepare_data --dataset=mnist --idx_dir=DIR --data_dir={root}')


def prepare(data_dir, idx_dir: str = ''):
  """Imports the IDX files in idx_dir; without one, downloads the source files."""
  if idx_dir:
    return idx.prepare_idx_dataset('mnist', idx_dir, data_dir)
  return sources.download_and_prepare('mnist', data_dir, HOW_TO_PREPARE.format(root=data_dir))
