"""ImageNet ILSVRC-2012 (1000 classes, 1.28M train / 50k validation JPEGs) as TFDS prepares it
from its manual download, in the ArrayRecord format. Too large to hold in memory: the train split
is read from disk at each step, and every image resized (shorter side 256) and centre-cropped."""
from isx import errors

IMAGE_SHAPE = (224, 224, 3)
STREAMED = True
HOW_TO_PREPARE = ("prepare it with TFDS from its manual download, with file_format='array_record', "
                  "into {root} (docs/data.md)")


def prepare(data_dir):
  raise errors.NotFound(f'isx cannot download imagenet2012; {HOW_TO_PREPARE.format(root=data_dir)}')
