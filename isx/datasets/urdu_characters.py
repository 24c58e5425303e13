"""URDU handwritten characters (Nawaz et al., DAS 2018) as a TFDS builder.

There is no public download, so the images are read from a manual folder;
importing this module registers the `urdu_characters` builder:

  import isx.datasets.urdu_characters  # noqa: F401 (registers the builder)
  builder = tfds.builder('urdu_characters', data_dir=data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
"""

import hashlib
import pathlib

import tensorflow as tf
import tensorflow_datasets as tfds

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


def load_image(path) -> tf.Tensor:
  """Decodes an image file to [64, 64, 1] uint8 grayscale.

  Colour is converted with ITU-R 601 luma weights (alpha is dropped); other
  sizes are stretched to 64x64 (bilinear, antialiased; aspect ratio is not
  kept).
  """
  data = tf.io.read_file(str(path))
  # channels=3 because TF's BMP decoder cannot output 1 channel.
  image = tf.image.rgb_to_grayscale(
      tf.io.decode_image(data, channels=3, expand_animations=False))
  if image.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
    image = tf.image.resize(image, (IMAGE_SIZE, IMAGE_SIZE), antialias=True)
    image = tf.cast(tf.round(tf.clip_by_value(image, 0, 255)), tf.uint8)
  return image


def list_images(manual_dir) -> dict[str, list[pathlib.Path]]:
  """Maps each class folder name in `manual_dir` to its image files."""
  class_dirs = sorted(p for p in pathlib.Path(manual_dir).iterdir()
                      if p.is_dir() and not p.name.startswith('.'))
  images = {d.name: sorted(f for f in d.iterdir()
                           if f.suffix.lower() in _EXTENSIONS)
            for d in class_dirs}
  if not images:
    raise ValueError(f'{manual_dir} has no class folders; expected '
                     f'<class_name>/*{"|".join(_EXTENSIONS)} in it')
  empty = [name for name, files in images.items() if not files]
  if empty:
    raise ValueError(f'class folders in {manual_dir} without '
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


class UrduCharacters(tfds.core.GeneratorBasedBuilder):
  """URDU handwritten characters, 64x64 grayscale, stratified 67/33 split."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Put the URDU handwritten character images (Nawaz et al., DAS 2018; ask the
  authors) into one folder per class, named after the class:
    <manual_dir>/<class_name>/<any name>.png|.jpg|.jpeg|.bmp
  Label ids follow the sorted class folder names. Images may be any size and
  colour; they are converted to 64x64 grayscale.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='URDU handwritten characters (Nawaz et al., DAS 2018).',
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 1)),
            # Names come from the class folders in _split_generators.
            'label': tfds.features.ClassLabel(),
        }),
        supervised_keys=('image', 'label'),
        citation=_CITATION,
    )

  def _split_generators(self, dl_manager):
    images = list_images(dl_manager.manual_dir)
    self.info.features['label'].names = list(images)
    splits = {'train': [], 'test': []}
    for label, files in images.items():
      train, test = split_train_test(files)
      splits['train'] += [(label, f) for f in train]
      splits['test'] += [(label, f) for f in test]
    return {name: self._generate_examples(examples)
            for name, examples in splits.items()}

  def _generate_examples(self, examples):
    for label, path in examples:
      yield f'{label}/{path.name}', {'image': load_image(path).numpy(),
                                     'label': label}
