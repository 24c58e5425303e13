"""What the rest of isx knows of a dataset (classes, image shape, split sizes) and the step counts
that follow from it; no TFDS or Grain here, so that steps, benchmarks and a JAX-only GPU machine
can build an Experiment from an info alone (isx.input_pipeline.dataset_info reads it from TFDS)."""
import dataclasses
from typing import Any

import jax


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  name: str
  num_classes: int
  image_shape: tuple
  num_train: int
  num_eval: int
  path: str | None = None  # the prepared TFDS dataset; None in an info that stands in for one
  streamed: bool = False  # the train split read from disk at each step, not held (ImageNet)
  # With dataset.classes or a validation split (isx.class_split); None: the whole splits.
  classes: tuple | None = None  # the training classes (dataset labels), in the head's order
  train_ids: Any = dataclasses.field(default=None, compare=False)  # train-split indices that train
  eval_ids: Any = dataclasses.field(default=None, compare=False)  # indices of the scored split
  eval_source: str | None = None  # the TFDS split scored ('validation': the train split)


def steps_per_epoch(info: DatasetInfo, global_batch: int) -> int:
  """Train batches per epoch; streamed, every process takes as many as its smallest shard allows."""
  if not info.streamed:
    return info.num_train // global_batch
  smallest = info.num_train // jax.process_count()
  return smallest // (global_batch // jax.process_count())


def total_steps(config, info: DatasetInfo) -> int:
  if config.num_train_steps is not None:
    return int(config.num_train_steps)
  return int(config.num_epochs * steps_per_epoch(info, config.batch_size))
