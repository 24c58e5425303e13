"""A workdir's layout (every file isx writes there is named here) and its checks: writable for a
training, a checkpoint to score for an evaluation. Experiment.open is the way in."""
import dataclasses

import jax
from etils import epath

from isx import errors

CONFIG_FILE = 'config.json'


@dataclasses.dataclass(frozen=True)
class Workdir:
  """Where a run's files live, under root (a local path or gs://...)."""
  root: str

  @property
  def path(self) -> epath.Path:
    return epath.Path(self.root)

  checkpoints = property(lambda self: self.path / 'checkpoints')
  damaged_checkpoints = property(lambda self: self.path / 'damaged_checkpoints')
  config_file = property(lambda self: self.path / CONFIG_FILE)
  metrics_file = property(lambda self: self.path / 'metrics.jsonl')
  eval_dir = property(lambda self: self.path / 'eval')
  embeddings = property(lambda self: self.eval_dir / 'embeddings.npz')
  eval_metrics = property(lambda self: self.eval_dir / 'metrics.json')

  def eval_dir_of(self, split: str) -> epath.Path:
    """Where an eval of split writes: eval/ for the test split, eval/SPLIT/ for another."""
    return self.eval_dir if split == 'test' else self.eval_dir / split
  cpu_setup = property(lambda self: self.path / 'cpu_setup.json')
  parameters = property(lambda self: self.path / 'parameters.txt')
  profile = property(lambda self: self.path / 'profile')

  def make_writable(self):
    """Creates the workdir and checkpoints/ (locally, or remotely through etils.epath, as Orbax
    and TFDS do) and checks that this process can write to both; one line if not. An
    unwritable checkpoints/ found only at the first save made Orbax retry for minutes."""
    try:
      for path in (self.path, self.checkpoints):
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f'.write_test_{jax.process_index()}'  # one per process
        probe.write_text('')
        probe.unlink()
    except Exception as e:  # noqa: BLE001  OSError locally; gcsfs/auth/network errors remotely
      reason = getattr(e, 'strerror', None) or ' '.join(str(e).split())[:200] or type(e).__name__
      raise errors.NotWritable(f'workdir {self.root} is not writable ({reason}); '
                               f'choose another --workdir') from None

  def check_evaluable(self):
    """One line, creating nothing, when there is nothing to score or nowhere to write it."""
    try:
      has_checkpoints = self.checkpoints.is_dir()
    except Exception as e:  # noqa: BLE001  a remote path this machine cannot reach
      raise errors.NotWritable(f'workdir {self.root} cannot be read '
                               f'({" ".join(str(e).split())[:200]})') from None
    if not has_checkpoints:
      raise errors.NotFound(self.no_checkpoint())
    if self.eval_dir.exists() and not self.eval_dir.is_dir():
      raise errors.InTheWay(f'{self.eval_dir} is a file, where isx.eval writes its metrics.json '
                            f'and embeddings.npz: move it away and run again')

  def no_checkpoint(self) -> str:
    return (f'no checkpoint in {self.checkpoints}; train first with '
            f'python -m isx.main --config=... --workdir={self.root}')
