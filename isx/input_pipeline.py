"""TFDS data sources (ArrayRecord, no TensorFlow) -> Grain -> batches -> global jax.Arrays.

Training order is a pure function of (seed, epoch): step s takes rows [i*B, (i+1)*B) of the
permutation `epoch_order(seed, s // steps_per_epoch)`, so a resumed run sees exactly the batches
an uninterrupted one would. For datasets that fit in memory (all but ImageNet) every process
walks the same global order and keeps only its rows of each global batch, so a step sees the
same examples whatever the number of processes (a 2-process run equals a 1-process run).
A streamed dataset (its plug-in's STREAMED: ImageNet) is read from disk instead: each process
permutes and reads its own contiguous slice of the split.

Two ways to feed the step, with identical batches:
- host (default for ImageNet): Grain reads and decodes each batch in worker threads, a thread
  moves it to the devices ahead of the step;
- device-resident (`dataset.device_resident`, the default): the whole train split is put on
  every device once, and each step gathers its batch there from the indices alone.

Eval: each process reads a contiguous slice; every example carries its global index, so results
are put back in dataset order, each example exactly once.
"""
import dataclasses
import functools
import os
import queue
import threading

import grain
import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from isx import class_split, datasets, errors, mesh as mesh_lib
from isx.dataset_info import DatasetInfo, steps_per_epoch
from isx.datasets import store

_FOREVER = 2 ** 40  # steps: the train stream has no natural end


def data_dir(config) -> epath.Path:
  return epath.Path(config.dataset.data_dir or os.environ.get('TFDS_DATA_DIR') or
                    os.path.expanduser('~/tensorflow_datasets'))


@functools.lru_cache(maxsize=16)
def _builder_at(path: str):
  return tfds.builder_from_directory(path)


def builder(config):
  """The prepared TFDS dataset of config.dataset (read-only): its plug-in (isx.datasets) prepares
  it when it is missing and dataset.download is True; one line if missing or unusable."""
  name = config.dataset.name
  plugin = datasets.module(name)
  root = data_dir(config)
  if root.exists() and not root.is_dir():
    raise errors.NotAFolder(f'dataset.data_dir {root} is a file, not a folder: point '
                            f'--config.dataset.data_dir at the folder that holds (or will hold) '
                            f'the prepared datasets')
  stored = name.rsplit('.', 1)[-1]
  path = store.dataset_dir(stored, root)
  if path is None and config.dataset.download:
    plugin.prepare(str(root), **datasets.settings(config.dataset))
    path = store.dataset_dir(stored, root)
  hint = getattr(plugin, 'HOW_TO_PREPARE', 'see docs/data.md').format(root=root)
  if path is None:
    raise errors.NotFound(f'dataset {name!r} is not prepared in {root}; {hint}')
  b = _builder_at(str(path))
  if str(b.info.file_format) not in (store.FILE_FORMAT, 'FileFormat.ARRAY_RECORD'):
    raise errors.ConfigError(
        f'dataset {name!r} in {path} is stored as {b.info.file_format}; isx reads '
        f'ArrayRecord without TensorFlow: {hint}, or prepare it with TFDS\'s '
        f"file_format='array_record'")
  return b


def dataset_info(config) -> DatasetInfo:
  """What the rest of isx needs of config's dataset, located (and prepared if asked) once: the
  readers below open it again from info.path."""
  b = builder(config)
  plugin = datasets.module(config.dataset.name)
  shape = tuple(getattr(plugin, 'IMAGE_SHAPE', b.info.features['image'].shape))
  splits = b.info.splits
  for split in (config.dataset.train_split, config.dataset.eval_split):
    if split not in splits and split != class_split.VALIDATION:
      raise errors.ConfigError(f'dataset {config.dataset.name!r} has no split {split!r}; it has '
                               f'{", ".join(splits)}')
  num_classes = b.info.features['label'].num_classes
  if num_classes < 2:
    raise errors.ConfigError(f'dataset {config.dataset.name!r} has {num_classes} class: a '
                             f'classifier needs at least 2 to learn anything')
  info = DatasetInfo(config.dataset.name, num_classes, shape,
                     splits[config.dataset.train_split].num_examples,
                     splits.get(config.dataset.eval_split, splits[config.dataset.train_split])
                     .num_examples, str(b.data_dir), streamed=getattr(plugin, 'STREAMED', False))
  if not class_split.active(config.dataset):
    return info
  validating = config.dataset.eval_split == class_split.VALIDATION
  source = config.dataset.train_split if validating else config.dataset.eval_split
  train_labels = _labels(info.path, config.dataset.train_split)
  classes, train_ids, eval_ids = class_split.split(
      config.dataset, num_classes, train_labels,
      train_labels if validating else _labels(info.path, source))
  return dataclasses.replace(
      info, num_classes=len(classes), num_train=len(train_ids), classes=classes,
      train_ids=train_ids, eval_ids=eval_ids, eval_source=source,
      num_eval=info.num_eval if eval_ids is None else len(eval_ids))


def eval_classes(info) -> list:
  """The classes (dataset labels) of the examples the eval split scores."""
  if info.eval_source is None:  # no class or validation split: the dataset's classes
    return list(range(info.num_classes))
  labels = _labels(info.path, info.eval_source)
  return sorted(int(c) for c in np.unique(labels if info.eval_ids is None else
                                          labels[info.eval_ids]))


@functools.lru_cache(maxsize=4)
def _labels(path: str, split: str) -> np.ndarray:
  """Every label of a split, in dataset order (read once, for class subsets)."""
  source = _builder_at(path).as_data_source(split)
  chunk = 4096
  chunks = (source.__getitems__(list(range(k, min(k + chunk, len(source)))))
            for k in range(0, len(source), chunk))
  return np.asarray([e['label'] for examples in chunks for e in examples], np.int64)


def _source(info: DatasetInfo, split: str):
  if info.path is None:
    raise errors.ConfigError(f'dataset info {info.name!r} has no path: it stands in for a dataset '
                             f'(benchmarks), and no examples can be read from it')
  return _builder_at(info.path).as_data_source(split)


def process_range(num_examples: int, process_index=None, process_count=None):
  """The contiguous [start, end) slice of a split that this process reads."""
  p = jax.process_index() if process_index is None else process_index
  n = jax.process_count() if process_count is None else process_count
  return p * num_examples // n, (p + 1) * num_examples // n


def _fit(image: np.ndarray, shape) -> np.ndarray:
  """An image as a uint8 array of `shape`. Decoded JPEGs (ImageNet) are resized so that the
  shorter side is 256, then centre-cropped (no augmentation)."""
  image = np.asarray(image, np.uint8)
  if image.shape == tuple(shape):
    return image
  from PIL import Image  # only ImageNet-style variable-size images get here
  h, w = image.shape[:2]
  scale = 256 / min(h, w)
  size = (max(shape[1], round(w * scale)), max(shape[0], round(h * scale)))
  resized = np.asarray(Image.fromarray(image.squeeze()).resize(size, Image.BILINEAR))
  top, left = (resized.shape[0] - shape[0]) // 2, (resized.shape[1] - shape[1]) // 2
  return resized[top:top + shape[0], left:left + shape[1]].reshape(shape)


class DataReadError(errors.UserError, ValueError):
  pass


def _read(source, indices, shape) -> dict:
  try:
    examples = source.__getitems__([int(i) for i in indices]) if len(indices) else []
  except Exception as e:  # noqa: BLE001  ArrayRecord/decoder errors: the files are damaged
    raise DataReadError(f'cannot read examples from {source}: {" ".join(str(e).split())[:200]}; '
                        f'the dataset files may be damaged: prepare the dataset again') from None
  return {'image': np.stack([_fit(e['image'], shape) for e in examples]).reshape(-1, *shape),
          'label': np.asarray([e['label'] for e in examples], np.int64)}


@functools.lru_cache(maxsize=2)
def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
  """The permutation of n examples that epoch `epoch` of a run seeded `seed` walks through."""
  return np.random.default_rng([seed, epoch]).permutation(n)


def local_indices(config, info: DatasetInfo, step: int) -> np.ndarray:
  """Indices into the train split of this process's rows of the global batch of `step`."""
  local = config.batch_size // jax.process_count()
  per_epoch = steps_per_epoch(info, config.batch_size)
  if per_epoch == 0:
    raise errors.ConfigError(f'batch_size={config.batch_size} is larger than the {info.num_train} '
                             f'training examples; use a smaller batch_size')
  epoch, i = divmod(step, per_epoch)
  if info.streamed:  # this process's own slice, in its own order
    start, end = process_range(info.num_train)
    return start + epoch_order(config.seed, epoch, end - start)[i * local:(i + 1) * local]
  first = i * config.batch_size + jax.process_index() * local
  return epoch_order(config.seed, epoch, info.num_train)[first:first + local]


def _grain(config, num_items, load):
  """Items load(0..num_items-1) in order, produced by Grain worker threads ahead of use."""
  return iter(grain.MapDataset.range(num_items).map(load).to_iter_dataset(
      grain.ReadOptions(num_threads=config.dataset.num_workers,
                        prefetch_buffer_size=2 * config.dataset.num_workers)))


def _read_train(source, info: DatasetInfo, positions) -> dict:
  """Training examples at positions of the training set (info.train_ids of the train split),
  their labels numbered as the head's outputs."""
  ids = positions if info.train_ids is None else info.train_ids[positions]
  batch = _read(source, ids, info.image_shape)
  if info.classes is not None:
    batch['label'] = class_split.head_labels(batch['label'], info.classes)
  return batch


def train_batches(config, info: DatasetInfo, start_step: int = 0):
  """This process's numpy batches {'image' uint8, 'label'} from start_step on, read on the host."""
  source = _source(info, config.dataset.train_split)
  local_indices(config, info, start_step)  # fail now on a batch larger than the split
  load = lambda k: _read_train(source, info, local_indices(config, info, start_step + k))
  return _grain(config, _FOREVER, load)


def load_train_split(config, info: DatasetInfo) -> dict:
  """The whole training set as numpy arrays {'image', 'label'} (for device-resident training)."""
  source = _source(info, config.dataset.train_split)
  chunk = 4096
  parts = _grain(config, -(-info.num_train // chunk), lambda k: _read_train(
      source, info, np.arange(k * chunk, min((k + 1) * chunk, info.num_train))))
  parts = list(parts)
  return {k: np.concatenate([p[k] for p in parts]) for k in ('image', 'label')}


def global_train_batches(config, info: DatasetInfo, mesh, start_step: int = 0):
  """take(k) -> the global batches of the next k steps stacked [k, batch, ...], from start_step
  on, sharded for the compiled step (mesh_lib.chunk_sharding) and fed as config asks."""
  chunk = mesh_lib.chunk_sharding(mesh)
  if not config.dataset.device_resident:
    per_step = prefetch(train_batches(config, info, start_step), mesh_lib.data_sharding(mesh))
    stack = jax.jit(lambda *b: jax.tree.map(lambda *x: jnp.stack(x), *b), out_shardings=chunk)
    return lambda k: stack(*(next(per_step) for _ in range(k)))
  if info.streamed:
    raise errors.ConfigError(f'dataset {info.name!r} is too large to keep on the devices; set '
                             f'--config.dataset.device_resident=False')
  split = load_train_split(config, info)
  resident = jax.device_put(split, mesh_lib.replicated(mesh))
  gather = jax.jit(lambda arrays, idx: jax.tree.map(lambda a: a[idx], arrays),
                   out_shardings=chunk)
  next_step = start_step

  def take(k):  # k steps' indices from the host (a few KiB), the images gathered on device
    nonlocal next_step
    idx = np.stack([local_indices(config, info, s) for s in range(next_step, next_step + k)])
    next_step += k
    return gather(resident, mesh_lib.to_global(idx, chunk))
  return take


def _eval_source(config, info: DatasetInfo):
  return _source(info, info.eval_source or config.dataset.eval_split)


def _eval_ids(info: DatasetInfo, positions) -> np.ndarray:
  """Indices into the scored split of the eval examples at positions (0..num_eval-1)."""
  positions = np.asarray(positions, np.int64)
  return positions if info.eval_ids is None else info.eval_ids[positions]


def read_eval_images(config, info: DatasetInfo, indices) -> np.ndarray:
  """Images of the eval examples at `indices` (their order), e.g. for retrieval pictures."""
  return _read(_eval_source(config, info), _eval_ids(info, indices), info.image_shape)['image']


def eval_batches(config, info: DatasetInfo):
  """Yields this process's padded eval batches {'image', 'label', 'index', 'mask'}.

  Every process yields the same number of batches (the longest shard's count; shorter shards
  add all-padding batches), so that each global batch is complete; mask = 0 marks padding.
  """
  local_batch = config.eval_batch_size // jax.process_count()
  source = _eval_source(config, info)
  start, end = process_range(info.num_eval)
  longest = max(e - s for s, e in (process_range(info.num_eval, p) for p in
                                   range(jax.process_count())))

  def load(k):
    index = np.arange(start + k * local_batch, min(start + (k + 1) * local_batch, end))
    batch = {**_read(source, _eval_ids(info, index), info.image_shape),
             'index': index.astype(np.int64)}
    pad = local_batch - len(index)
    padded = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)])
              for k, v in batch.items()}
    padded['mask'] = np.concatenate([np.ones(len(index), np.float32), np.zeros(pad, np.float32)])
    return padded
  return _grain(config, -(-longest // local_batch), load)


def prefetch(iterator, sharding, size=2):
  """Moves batches to the devices in a background thread, `size` ahead of the train step."""
  q = queue.Queue(maxsize=size)
  sentinel = object()

  def worker():
    try:
      for batch in iterator:
        q.put(mesh_lib.to_global(batch, sharding))
    except Exception as e:  # surfaced in the consumer, not lost in the thread
      q.put(e)
    q.put(sentinel)

  threading.Thread(target=worker, daemon=True).start()
  while (item := q.get()) is not sentinel:
    if isinstance(item, Exception):
      raise item
    yield item
