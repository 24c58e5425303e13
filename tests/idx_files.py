"""Writes IDX files (the MNIST format) for the tests; isx itself only reads them."""
import gzip
import pathlib
import struct

import numpy as np


def write_idx(path, array) -> None:
  """A uint8 array as an IDX file, gzipped if `path` ends in .gz."""
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f'>{array.ndim}I', *array.shape)
  opener = gzip.open if pathlib.Path(path).suffix == '.gz' else open
  with opener(path, 'wb') as f:
    f.write(header + array.tobytes())
