"""URDU handwritten characters (Nawaz et al., DAS 2018) as an ArrayRecord TFDS dataset.

There is no public download, so the images are read from a manual folder, one folder per
class (<manual_dir>/<class_name>/<any name>.png|.jpg|.jpeg|.bmp), and written without
TensorFlow:

  python -m isx.prepare_data --dataset=urdu_characters --manual_dir=DIR --data_dir=OUT

or by the first training run, given --config.dataset.manual_dir=DIR.
"""

import hashlib
import pathlib

import numpy as np
from PIL import Image

from isx import errors
from isx.datasets import store

NAME, VERSION = 'urdu_characters', '1.0.0'
HOW_TO_PREPARE = ('set --config.dataset.manual_dir=DIR, a folder of one sub-folder of images per '
                  'class, or python -m isx.prepare_data --dataset=urdu_characters --manual_dir=DIR '
                  '--data_dir={root}')
IMAGE_SIZE = 64  # The paper trains on 64x64 grayscale images.
TEST_FRACTION = 0.33  # The paper's test split.
_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp')

_CITATION = """\
@inproceedings{nawaz2018urdu,
  title={Handwritten Characters Recognition via Deep Metric Learning},
  author={Nawaz, Shah and Calefati, Alessandro and Ahmed, Nisar and Gallo, Ignazio},
  booktitle={13th IAPR International Workshop on Document Analysis Systems (DAS)},
  year={2018},
}"""


def load_image(path) -> np.ndarray:
  """Decodes an image file to [64, 64, 1] uint8 grayscale.

  Colour is converted with ITU-R 601 luma weights (alpha is dropped); other sizes are
  stretched to 64x64 (bilinear, antialiased; aspect ratio is not kept).
  """
  with Image.open(path) as image:
    gray = image.convert('RGB').convert('L')
    if gray.size != (IMAGE_SIZE, IMAGE_SIZE):
      gray = gray.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR, reducing_gap=None)
    return np.asarray(gray, np.uint8)[..., None]


def list_images(manual_dir) -> dict[str, list[pathlib.Path]]:
  """Maps each class folder name in `manual_dir` to its image files."""
  class_dirs = sorted(p for p in pathlib.Path(manual_dir).iterdir()
                      if p.is_dir() and not p.name.startswith('.'))
  images = {d.name: sorted(f for f in d.iterdir()
                           if f.suffix.lower() in _EXTENSIONS)
            for d in class_dirs}
  if not images:
    raise errors.ConfigError(f'{manual_dir} has no class folders; expected '
                             f'<class_name>/*{"|".join(_EXTENSIONS)} in it')
  empty = [name for name, files in images.items() if not files]
  if empty:
    raise errors.ConfigError(f'class folders in {manual_dir} without '
                             f'{"/".join(_EXTENSIONS)} images: {empty}')
  return images


def split_train_test(files: list[pathlib.Path]):
  """Deterministically puts round(33%) of one class's files in the test split.

  Files are ranked by the SHA-256 of their name, so the split depends neither
  on directory listing order nor on an RNG implementation.
  """
  ranked = sorted(files, key=lambda f: hashlib.sha256(f.name.encode()).digest())
  num_test = round(len(files) * TEST_FRACTION)
  return ranked[num_test:], ranked[:num_test]


def prepare(data_dir, manual_dir: str = ''):
  """Writes DATA_DIR/urdu_characters/1.0.0 from the class folders in manual_dir."""
  if not manual_dir:
    raise errors.NotFound('urdu_characters has no public download: ' + HOW_TO_PREPARE.format(
        root=data_dir))
  images = list_images(manual_dir)
  splits = {'train': [], 'test': []}
  for label, files in enumerate(images.values()):
    train, test = split_train_test(files)
    splits['train'] += [(label, f) for f in train]
    splits['test'] += [(label, f) for f in test]
  examples = lambda pairs: ((f'{p.parent.name}/{p.name}', load_image(p), label)
                            for label, p in pairs)
  return store.write_dataset(
      NAME, VERSION, data_dir, {split: examples(pairs) for split, pairs in splits.items()},
      image_shape=(IMAGE_SIZE, IMAGE_SIZE, 1), label_names=list(images),
      description='URDU handwritten characters (Nawaz et al., DAS 2018). ' + _CITATION)
