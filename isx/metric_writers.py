"""Scalars to TensorBoard and to a JSON-lines file in the workdir, by process 0 only.

TensorBoard events are written with tensorboardX: pure Python over protobuf, no TensorFlow,
kept up to date, and the event files are the ones TensorBoard reads.
"""
import json
import time

import jax
import numpy as np
import tensorboardX

from isx.workdir import Workdir


class MetricWriter:

  def __init__(self, workdir: str, enabled=None, resume_step: int | None = 0):
    """resume_step: the step training resumes from. Records of later steps are from the part
    of an interrupted run that was lost with it, and are dropped so no step appears twice.
    None (the eval binary) keeps every record and appends."""
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    if self.enabled:
      path = Workdir(workdir).metrics_file
      path.parent.mkdir(parents=True, exist_ok=True)
      if resume_step is not None:
        _rewrite(path, [r for r in read_jsonl(workdir) if r['step'] <= resume_step])
      self._path, self._workdir = path, workdir
      self._jsonl = path.open('a')
      # Events in the workdir itself: `tensorboard --logdir PARENT` names the run after it.
      self._tb = tensorboardX.SummaryWriter(str(workdir))

  def write(self, step: int, scalars: dict, prefix: str = 'train', replace: bool = False):
    """replace: this step's earlier records of prefix go first (a workdir evaluated again at the
    same step keeps one eval/* record of it, the newest)."""
    if not self.enabled:
      return
    values = {f'{prefix}/{k}': float(np.asarray(v)) for k, v in scalars.items()
              if not isinstance(v, (str, list, tuple, dict, type(None)))}  # notes: metrics.json
    if replace:
      self._jsonl.close()
      kept = [r for r in read_jsonl(self._workdir) if not (
          r['step'] == int(step) and any(k.startswith(f'{prefix}/') for k in r))]
      _rewrite(self._path, kept)
      self._jsonl = self._path.open('a')
    self._jsonl.write(json.dumps({'step': int(step), 'time': time.time(), **values}) + '\n')
    self._jsonl.flush()
    for k, v in values.items():
      self._tb.add_scalar(k, v, global_step=int(step))
    self._tb.flush()

  def histogram(self, step: int, name: str, values):
    """A histogram in TensorBoard (the JSON lines hold scalars only)."""
    if self.enabled and len(values):
      self._tb.add_histogram(name, np.asarray(values), global_step=int(step))
      self._tb.flush()

  def close(self):
    if self.enabled:
      self._jsonl.close()
      self._tb.close()


PICTURES = ('learning_curves.png', 'embedding_norms.png', 'retrieval_examples.png', 'features.png')


def write_pictures(workdir: str, step: int):
  """The PNGs isx drew in the workdir, as TensorBoard images at step (process 0)."""
  if jax.process_index() != 0:
    return
  from PIL import Image  # Pillow comes with matplotlib, which drew them
  tb = tensorboardX.SummaryWriter(str(workdir))
  for name in PICTURES:
    path = Workdir(workdir).path / name
    if path.exists():
      with path.open('rb') as f:
        image = np.asarray(Image.open(f).convert('RGB'))
      tb.add_image(f'pictures/{name[:-4]}', image, global_step=int(step), dataformats='HWC')
  tb.close()


def _rewrite(path, records):
  """The file holds exactly records, replaced whole, so that a kill mid-write loses nothing."""
  tmp = path.parent / f'{path.name}.tmp'
  tmp.write_text(''.join(json.dumps(r) + '\n' for r in records))
  tmp.replace(path)


def read_jsonl(workdir: str):
  """The records; a last line cut short by a killed process is left out."""
  path = Workdir(workdir).metrics_file
  if not path.exists():
    return []
  with path.open() as f:
    lines = [line for line in f if line.strip()]
  records = [json.loads(line) for line in lines[:-1]]
  try:
    return records + [json.loads(line) for line in lines[-1:]]
  except json.JSONDecodeError:
    return records
