"""TFDS -> this process's shard -> batches of uint8 images -> global jax.Arrays.

Training order is a pure function of (seed, epoch): resuming at step s rebuilds epoch
s // steps_per_epoch and skips the batches already seen, so a resumed run sees exactly the
batches an uninterrupted one would. For datasets that fit in memory (all but ImageNet) every
process walks the same global order and keeps only its rows of each global batch, so a step sees
the same examples whatever the number of processes (a 2-process run equals a 1-process run).
ImageNet streams instead: each process reads its own contiguous slice of the split.

Eval: each process reads a contiguous slice (`split[a:b]`); every example carries its global
index, so results are put back in dataset order, each example exactly once.
"""
import dataclasses
import os
import queue
import threading

import jax
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from isx import step as step_lib

SUPPORTED = ('mnist', 'fashion_mnist', 'cifar10', 'cifar100', 'svhn_cropped', 'imagenet2012',
             'urdu_characters')
IMAGENET_SIZE = 224


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  name: str
  num_classes: int
  image_shape: tuple
  num_train: int
  num_eval: int


def _builder(config):
  name = config.dataset.name
  if name not in SUPPORTED:
    raise ValueError(f'unknown dataset {name!r}; choose one of {", ".join(SUPPORTED)}')
  if name == 'urdu_characters':
    import isx.datasets.urdu_characters  # noqa: F401  registers the builder with TFDS
  data_dir = config.dataset.data_dir or os.environ.get('TFDS_DATA_DIR')
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    hint = ('offline: python -m isx.prepare_data --dataset=%s --idx_dir=DIR --data_dir=OUT, '
            'then --config.dataset.data_dir=OUT' % name if name in ('mnist', 'fashion_mnist')
            else 'see the README, Data section')
    raise FileNotFoundError(
        f'dataset {name!r} is not prepared in {builder.data_dir}; online: '
        f'python -c "import tensorflow_datasets as tfds; tfds.builder(\'{name}\''
        f'{", data_dir=" + repr(data_dir) if data_dir else ""}).download_and_prepare()"; {hint}')
  return builder


def dataset_info(config) -> DatasetInfo:
  builder = _builder(config)
  shape = tuple(builder.info.features['image'].shape)
  if config.dataset.name == 'imagenet2012':
    shape = (IMAGENET_SIZE, IMAGENET_SIZE, 3)
  splits = builder.info.splits
  return DatasetInfo(config.dataset.name, builder.info.features['label'].num_classes, shape,
                     splits[config.dataset.train_split].num_examples,
                     splits[config.dataset.eval_split].num_examples)


def process_range(num_examples: int, process_index=None, process_count=None):
  """The contiguous [start, end) slice of a split that this process reads."""
  p = jax.process_index() if process_index is None else process_index
  n = jax.process_count() if process_count is None else process_count
  return p * num_examples // n, (p + 1) * num_examples // n


def _streams(info: DatasetInfo) -> bool:
  return info.name == 'imagenet2012'


def _read(config, split, num_examples, decode_imagenet=False, whole=False):
  start, end = (0, num_examples) if whole else process_range(num_examples)
  builder = _builder(config)
  ds = builder.as_dataset(split=f'{split}[{start}:{end}]', shuffle_files=False,
                          decoders={'image': tfds.decode.SkipDecoding()} if decode_imagenet else None)
  index = tf.data.Dataset.range(start, end)
  ds = tf.data.Dataset.zip(ds, index).map(
      lambda ex, i: {'image': ex['image'], 'label': ex['label'], 'index': i})
  if decode_imagenet:
    ds = ds.map(_decode_resize, num_parallel_calls=tf.data.AUTOTUNE)
  return ds, end - start


def _decode_resize(ex):
  # ImageNet: decode, resize the shorter side to 256, centre crop 224 (no augmentation by default).
  image = tf.io.decode_jpeg(ex['image'], channels=3)
  h, w = tf.shape(image)[0], tf.shape(image)[1]
  scale = 256.0 / tf.cast(tf.minimum(h, w), tf.float32)
  size = tf.cast(tf.round(tf.cast(tf.stack([h, w]), tf.float32) * scale), tf.int32)
  image = tf.image.resize(image, size, antialias=True)
  image = tf.image.resize_with_crop_or_pad(image, IMAGENET_SIZE, IMAGENET_SIZE)
  return {**ex, 'image': tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)}


def steps_per_epoch(info: DatasetInfo, global_batch: int) -> int:
  """Train batches per epoch; streamed, every process takes as many as its smallest shard allows."""
  if not _streams(info):
    return info.num_train // global_batch
  smallest = info.num_train // jax.process_count()
  return smallest // (global_batch // jax.process_count())


def train_batches(config, info: DatasetInfo, start_step: int = 0):
  """Yields this process's local numpy batches {'image' uint8, 'label'} forever, from start_step."""
  local_batch = config.batch_size // jax.process_count()
  per_epoch = steps_per_epoch(info, config.batch_size)
  if per_epoch == 0:
    raise ValueError(f'batch_size={config.batch_size} is larger than the {info.num_train} '
                     f'training examples; use a smaller batch_size')
  streams = _streams(info)
  ds, n = _read(config, config.dataset.train_split, info.num_train, decode_imagenet=streams,
                whole=not streams)
  ds = ds.map(lambda ex: {'image': ex['image'], 'label': ex['label']})
  if streams:
    batch, rows = local_batch, slice(None)
  else:
    ds = ds.cache()  # decode once; later epochs read memory
    first = jax.process_index() * local_batch
    batch, rows = config.batch_size, slice(first, first + local_batch)
  epoch, skip = divmod(start_step, per_epoch)
  while True:
    # Seeded, non-reshuffling shuffle: the order of epoch e depends only on (seed, e).
    epoch_ds = (ds.shuffle(min(config.dataset.shuffle_buffer, n),
                           seed=int(config.seed) * 100_003 + epoch, reshuffle_each_iteration=False)
                .batch(batch, drop_remainder=True).take(per_epoch).skip(skip)
                .map(lambda b: {k: v[rows] for k, v in b.items()})
                .prefetch(tf.data.AUTOTUNE))
    yield from tfds.as_numpy(epoch_ds)
    epoch, skip = epoch + 1, 0


def eval_batches(config, info: DatasetInfo):
  """Yields this process's padded eval batches {'image', 'label', 'index', 'mask'}.

  Every process yields the same number of batches (the longest shard's count; shorter shards
  add all-padding batches), so that each global batch is complete; mask = 0 marks padding.
  """
  local_batch = config.eval_batch_size // jax.process_count()
  ds, _ = _read(config, config.dataset.eval_split, info.num_eval, decode_imagenet=_streams(info))
  longest = max(e - s for s, e in (process_range(info.num_eval, p) for p in
                                   range(jax.process_count())))
  num_batches = -(-longest // local_batch)
  batches = iter(tfds.as_numpy(ds.batch(local_batch).prefetch(tf.data.AUTOTUNE)))
  empty = {'image': np.zeros((0, *info.image_shape), np.uint8), 'label': np.zeros(0, np.int64),
           'index': np.zeros(0, np.int64)}
  for _ in range(num_batches):
    batch = next(batches, empty)
    real = len(batch['label'])
    pad = local_batch - real
    padded = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) for k, v in
              batch.items()}
    padded['mask'] = np.concatenate([np.ones(real, np.float32), np.zeros(pad, np.float32)])
    yield padded


def prefetch(iterator, sharding, size=2):
  """Moves batches to the devices in a background thread, `size` ahead of the train step."""
  q = queue.Queue(maxsize=size)
  sentinel = object()

  def worker():
    try:
      for batch in iterator:
        q.put(step_lib.to_global(batch, sharding))
    except Exception as e:  # surfaced in the consumer, not lost in the thread
      q.put(e)
    q.put(sentinel)

  threading.Thread(target=worker, daemon=True).start()
  while (item := q.get()) is not sentinel:
    if isinstance(item, Exception):
      raise item
    yield item
