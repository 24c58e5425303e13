"""How far raw pixels go on glyphs' test split: retrieval (isx.knn, the metrics of the glyphs
tables) on the L2-normalised pixels, over all 155 classes and over the 78 that
configs/glyphs_open_set.py leaves unseen. A floor for the learned embeddings.

  python results/glyph_pixel_baseline.py --data_dir=DATA
"""
import argparse
import json

import numpy as np
import tensorflow_datasets as tfds

from isx import knn
from isx.datasets import store


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', required=True)
  args = parser.parse_args()
  source = tfds.builder_from_directory(
      str(store.dataset_dir('glyphs', args.data_dir))).as_data_source('test')
  examples = [source[i] for i in range(len(source))]
  pixels = np.stack([e['image'].ravel() for e in examples]).astype(np.float32)
  pixels /= np.linalg.norm(pixels, axis=1, keepdims=True)
  labels = np.array([int(e['label']) for e in examples])
  num_classes = len(set(labels.tolist()))
  for name, rows in (('all classes', np.ones(len(labels), bool)),
                     ('unseen half', labels >= num_classes // 2)):
    metrics = knn.retrieval_metrics(pixels[rows], labels[rows], (1, 10))
    print(name, json.dumps({k: round(100 * float(v), 2) for k, v in metrics.items()}))


if __name__ == '__main__':
  main()
