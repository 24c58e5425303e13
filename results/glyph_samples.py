"""Draws docs/glyphs_samples.png: one row per class (16 classes, the first by label), one column per
example (its first 12 in the train split's order, then 4 from the test split's unseen fonts).

  python results/glyph_samples.py --data_dir=DATA
"""
import argparse
import os

import matplotlib
import numpy as np
import tensorflow_datasets as tfds

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def examples(data_dir, split, classes, per_class):
  from isx.datasets import store  # noqa: E402
  source = tfds.builder_from_directory(str(store.dataset_dir('glyphs', data_dir))).as_data_source(split)
  picked = {c: [] for c in range(classes)}
  for i in range(len(source)):
    example = source[i]
    label = int(example['label'])
    if label < classes and len(picked[label]) < per_class:
      picked[label].append(example['image'][..., 0])
    if all(len(v) == per_class for v in picked.values()):
      break
  return picked


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--out', default=os.path.join(ROOT, 'docs', 'glyphs_samples.png'))
  args = parser.parse_args()
  rows, train_cols, test_cols = 16, 12, 4
  train = examples(args.data_dir, 'train', rows, train_cols)
  test = examples(args.data_dir, 'test', rows, test_cols)
  grid = np.ones((rows * 30, (train_cols + test_cols) * 30 + 8), np.uint8) * 255
  for r in range(rows):
    for c, image in enumerate(train[r] + test[r]):
      x = c * 30 + (8 if c >= train_cols else 0)
      grid[r * 30 + 1:r * 30 + 29, x + 1:x + 29] = 255 - image
  fig, ax = plt.subplots(figsize=(grid.shape[1] / 60, grid.shape[0] / 60))
  ax.imshow(grid, cmap='gray', vmin=0, vmax=255)
  ax.set_axis_off()
  ax.set_title('glyphs: 12 train images | 4 test images (unseen font families), per class',
               fontsize=7)
  fig.savefig(args.out, dpi=90, bbox_inches='tight')
  print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
