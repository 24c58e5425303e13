"""Scalars to TensorBoard and to a JSON-lines file in the workdir, by process 0 only."""
import json
import os
import time

import jax
import numpy as np


class MetricWriter:

  def __init__(self, workdir: str, enabled=None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._tb = None
    if self.enabled:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')
      import tensorflow as tf  # TensorBoard event files without a second dependency
      self._tb = tf.summary.create_file_writer(os.path.join(workdir, 'tensorboard'))

  def write(self, step: int, scalars: dict, prefix: str = 'train'):
    if not self.enabled:
      return
    values = {f'{prefix}/{k}': float(np.asarray(v)) for k, v in scalars.items()}
    self._jsonl.write(json.dumps({'step': int(step), 'time': time.time(), **values}) + '\n')
    self._jsonl.flush()
    import tensorflow as tf
    with self._tb.as_default():
      for k, v in values.items():
        tf.summary.scalar(k, v, step=int(step))
    self._tb.flush()

  def close(self):
    if self.enabled:
      self._jsonl.close()
      self._tb.close()


def read_jsonl(workdir: str):
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
