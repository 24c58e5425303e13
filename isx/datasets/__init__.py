"""Datasets that TFDS cannot download here.

Kept import-free because TFDS is slow to import:
- `isx.datasets.idx`: MNIST / FashionMNIST IDX files -> TFDS's own dataset.
- `isx.datasets.urdu_characters`: importing it registers the
  `urdu_characters` TFDS builder (manual download).
"""
