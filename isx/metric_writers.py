"""Scalars to TensorBoard and to a JSON-lines file in the workdir, by process 0 only.

TensorBoard events are written with tensorboardX: pure Python over protobuf, no TensorFlow,
kept up to date, and the event files are the ones TensorBoard reads.
"""
import json
import os
import time

import jax
import numpy as np
import tensorboardX
from etils import epath


class MetricWriter:

  def __init__(self, workdir: str, enabled=None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    if self.enabled:
      epath.Path(workdir).mkdir(parents=True, exist_ok=True)
      self._jsonl = (epath.Path(workdir) / 'metrics.jsonl').open('a')
      self._tb = tensorboardX.SummaryWriter(os.path.join(workdir, 'tensorboard'))

  def write(self, step: int, scalars: dict, prefix: str = 'train'):
    if not self.enabled:
      return
    values = {f'{prefix}/{k}': float(np.asarray(v)) for k, v in scalars.items()}
    self._jsonl.write(json.dumps({'step': int(step), 'time': time.time(), **values}) + '\n')
    self._jsonl.flush()
    for k, v in values.items():
      self._tb.add_scalar(k, v, global_step=int(step))
    self._tb.flush()

  def close(self):
    if self.enabled:
      self._jsonl.close()
      self._tb.close()


def read_jsonl(workdir: str):
  path = epath.Path(workdir) / 'metrics.jsonl'
  if not path.exists():
    return []
  with path.open() as f:
    return [json.loads(line) for line in f if line.strip()]
