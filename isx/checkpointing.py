"""Orbax checkpoints: atomic saves, keep the newest N, restore the newest one that reads back.

Orbax writes each step to a temporary folder and renames it when complete, so a crash mid-save
leaves no "latest" checkpoint behind; a committed checkpoint that is later damaged (truncated
file) fails to restore and the next newest is used; a training moves it aside to
WORKDIR/damaged_checkpoints/ (kept for inspection, and out of the way of the next save of that
step), an evaluation leaves it where it is. Nothing here deletes
a checkpoint: only Orbax's max_to_keep does, after a newer one has been committed.
"""
import contextlib
import dataclasses
import gc
import logging as std_logging
import os
import shutil
import sys
import time

import jax
import optax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

from isx import errors, upgrade
from isx.workdir import Workdir


def manager(workdir: str, max_to_keep: int = 3, writer: bool = False) -> ocp.CheckpointManager:
  """writer: a training, which holds the workdir's lock. It removes the temporary folders that a
  killed writer left behind (an unfinished save is never progress); a reader (isx.eval, which
  may run beside a training) leaves them to the save that may still be writing them."""
  return ocp.CheckpointManager(
      Workdir(workdir if '://' in workdir else os.path.abspath(workdir)).checkpoints,
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           cleanup_tmp_directories=writer))


def _restorable(state):
  """The arrays of a TrainState: its pytree fields (tx and apply_fn are code, rebuilt from the
  config), so a field added to TrainState is checkpointed without a change here."""
  return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
          if f.metadata.get('pytree_node', True)}


class CheckpointWriteError(errors.UserError, OSError):
  pass


def save(mngr: ocp.CheckpointManager, state, force: bool = False) -> bool:
  step = int(jax.device_get(state.step))
  if not (force or mngr.should_save(step)):
    return False
  tree = _restorable(state)
  _check_free_space(mngr, step, tree)
  with _write_errors(mngr, step):
    return mngr.save(step, args=ocp.args.StandardSave(tree), force=force)


def _check_free_space(mngr, step, tree):
  """Refuses, in one line, a save that cannot fit on a local disk: a write that fails part-way
  leaves TensorStore's callbacks printing dozens of tracebacks before Orbax gives up."""
  if '://' in str(mngr.directory):
    return
  need = sum(leaf.nbytes for leaf in jax.tree.leaves(tree)) // jax.process_count()
  free = shutil.disk_usage(mngr.directory).free
  if free < need + (1 << 20):  # plus Orbax's metadata
    raise CheckpointWriteError(
        f'cannot write checkpoint {step} to {mngr.directory}: it needs about {need / 2**20:.1f} '
        f'MiB and {free / 2**20:.1f} MiB are free; free some space or choose another --workdir. '
        f'Earlier checkpoints are kept')


def wait_for_save(mngr: ocp.CheckpointManager):
  """Waits for the async save in flight; its write error (e.g. a full disk) is one line."""
  with _write_errors(mngr, mngr.latest_step()):
    mngr.wait_until_finished()


def latest_complete(mngr: ocp.CheckpointManager) -> int | None:
  """The newest step whose checkpoint is committed on disk, read back from the folder (not the
  manager's memory of what it was asked to save)."""
  mngr.reload()
  return mngr.latest_step()


def close(mngr: ocp.CheckpointManager):
  """On any way out of a training: the save in flight is of a step that was checked finite, so
  it is finished; if it cannot be, its temporary folder is removed, so that nothing on disk looks
  like progress that is not there. Never raises: the error that ended the run is the one to show."""
  try:
    mngr.wait_until_finished()
  except Exception as e:  # noqa: BLE001  the write's own failure; the run's error comes first
    logging.warning('the checkpoint save in flight failed (%s); removing what it left', e)
    if jax.process_index() == 0:
      for tmp in epath.Path(mngr.directory).glob('*.orbax-checkpoint-tmp*'):
        tmp.rmtree(missing_ok=True)
  mngr.close()


@contextlib.contextmanager
def _write_errors(mngr, step):
  try:
    yield
  except Exception as e:  # noqa: BLE001  Orbax/TensorStore wrap OS errors in many types
    raise CheckpointWriteError(
        f'cannot write checkpoint {step} to {mngr.directory} ({_first_line(e)}); free some space '
        f'or choose another --workdir. Earlier checkpoints are kept') from None


class CheckpointMismatchError(errors.UserError, ValueError):
  pass


def restore_latest(mngr: ocp.CheckpointManager, state, writer: bool = True,
                   weights_only: bool = False):
  """Returns (state restored from the newest readable checkpoint, its step), or (state, None).
  weights_only (an evaluation, whose state has no optimiser): only the step, the weights and
  the batch statistics are read, the weights' EMA (optim.ema_of_params) in the weights' place
  when the checkpoint keeps one; the optimiser's and the loss's arrays stay on disk.

  Damaged checkpoints are reported and skipped; a writer (the training, which holds the
  workdir's lock) moves them aside, a reader (isx.eval) changes nothing in the workdir. A
  checkpoint that a training running beside the reader pruned while it was read is not damage:
  the reader tries the newest again. A checkpoint whose arrays do not fit `state` (another model
  config) is an error, not damage: it is reported with what to do.
  """
  wanted = jax.tree.map(ocp.utils.to_shape_dtype_struct, _restorable(state))
  steps, skipped = sorted(mngr.all_steps(), reverse=True), set()
  if steps:  # before any read: a failed one's leftovers can report before the except runs
    _drop_abandoned_read_reports()
  while steps:
    step = steps.pop(0)
    saved_tree = _saved_tree(mngr, step)
    saved = None if saved_tree is None else _shapes(saved_tree)
    if weights_only:
      target, convert = _weights_target(wanted, saved_tree)
    else:
      target, convert = upgrade.checkpoint_target(wanted, saved or {})
    mismatch = _mismatch(saved, target, partial=weights_only)
    if mismatch:
      raise CheckpointMismatchError(
          f'checkpoint {step} in {mngr.directory} was written by a different model config '
          f'({mismatch}); use the config it was trained with or a new --workdir')
    try:
      if target is None:
        raise ValueError('its array metadata cannot be read')
      args = (ocp.args.PyTreeRestore(item=target, restore_args=_restore_args(target))
              if weights_only else ocp.args.StandardRestore(target))
      restored = mngr.restore(step, args=args)
      return state.replace(**convert(restored)), step
    except Exception as e:  # noqa: BLE001  its arrays fit, so any read failure is damage
      # Orbax appends the whole TensorStore spec to the reason; the first part says it all.
      reason = _first_line(e).split('. See full TensorStore details')[0]
    gc.collect()  # the failed restore's collectable leftovers report (to the filter) now
    if not (epath.Path(mngr.directory) / str(step)).exists():  # pruned by its training
      mngr.reload()
      steps = sorted((s for s in mngr.all_steps() if s not in skipped), reverse=True)
      continue
    if writer:
      _set_aside(mngr, step, reason)
    else:
      skipped.add(step)
      print(f'warning: checkpoint {step} is damaged ({reason}); skipped, left in place (the '
            f'next training of this workdir moves it to damaged_checkpoints/)', flush=True)
  return state, None


def _drop_abandoned_read_reports():
  """A failed Orbax restore leaves its other array reads behind on a closed event loop. Each
  one reports a traceback when it finishes ('Event loop is closed'), when it is garbage
  collected, or through asyncio's 'exception was never retrieved': hundreds of lines on stderr
  for one damaged checkpoint, which isx reports once. From now on those reports, and only
  those, are dropped."""
  previous = sys.unraisablehook
  if not getattr(previous, 'isx_drops_abandoned_reads', False):
    def hook(unraisable):
      code = getattr(unraisable.object, 'cr_code', None)
      closed_loop = (isinstance(unraisable.exc_value, RuntimeError)
                     and str(unraisable.exc_value) == 'Event loop is closed')
      if not (closed_loop or 'orbax' in getattr(code, 'co_filename', '')):
        previous(unraisable)
    hook.isx_drops_abandoned_reads = True
    sys.unraisablehook = hook
    never_retrieved = lambda record: record.getMessage().split('\n')[0].endswith(
        'exception was never retrieved')
    std_logging.getLogger('asyncio').addFilter(lambda record: not never_retrieved(record))


def _set_aside(mngr, step: int, reason: str):
  damaged = Workdir(str(epath.Path(mngr.directory).parent)).damaged_checkpoints
  target = damaged / f'{step}-{int(time.time())}'
  logging.warning('checkpoint %d in %s is damaged (%s); moved to %s, trying an older one',
                  step, mngr.directory, reason, target)
  print(f'warning: checkpoint {step} is damaged ({reason}); moved to {target}', flush=True)
  if jax.process_index() == 0:
    damaged.mkdir(parents=True, exist_ok=True)
    (epath.Path(mngr.directory) / str(step)).rename(target)
  multihost_utils.sync_global_devices(f'isx_set_aside_{step}')
  mngr.reload()


def _path(path) -> str:
  return '/'.join(str(getattr(k, 'key', getattr(k, 'name', getattr(k, 'idx', k)))) for k in path)


def _shapes(tree) -> dict:
  """{path: shape} of tree's arrays, its placeholders (arrays not to read) left out."""
  return {_path(path): tuple(getattr(leaf, 'shape', ()))
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
          if leaf is not ocp.PLACEHOLDER}


def _saved_tree(mngr, step: int):
  """Checkpoint `step`'s tree of array metadata; None when it cannot be read: then the
  checkpoint is damaged, not foreign, and the restore handles it."""
  try:
    return ocp.StandardCheckpointHandler().metadata(
        epath.Path(mngr.directory) / str(step) / 'default').tree
  except Exception:  # noqa: BLE001
    return None


_WEIGHTS = ('step', 'params', 'batch_stats')  # what an evaluation reads, besides the EMA


def _weights_target(wanted, saved_tree):
  """(target, convert) that read a checkpoint's step, params and batch_stats (as in wanted) and
  the params' EMA where its optimiser state keeps one (an 'ema_params' subtree), every other
  saved array a placeholder; convert returns the EMA as the params. (None, None) when the
  checkpoint's metadata cannot be read."""
  if saved_tree is None:
    return None, None
  params = {_path(p): leaf for p, leaf in jax.tree_util.tree_leaves_with_path(wanted['params'])}

  def pick(path, _):
    head, _, rest = _path(path).partition('/ema_params/')
    if rest and head.startswith('opt_state'):  # the EMA of a weight the target has
      return params.get(rest, ocp.PLACEHOLDER)  # (another model's: the params mismatch says so)
    return ocp.PLACEHOLDER
  target = {**jax.tree_util.tree_map_with_path(pick, saved_tree),
            **{k: wanted[k] for k in _WEIGHTS}}

  def convert(restored):
    ema = optax.tree_utils.tree_get_all_with_path(restored['opt_state'], 'ema_params')
    return {'step': restored['step'], 'params': ema[0][1] if ema else restored['params'],
            'batch_stats': restored['batch_stats']}
  return target, convert


def _restore_args(target):
  """Where each array of target goes: its ShapeDtypeStruct's sharding; placeholders nowhere."""
  return jax.tree.map(
      lambda leaf: ocp.RestoreArgs() if leaf is ocp.PLACEHOLDER else ocp.ArrayRestoreArgs(
          sharding=leaf.sharding, global_shape=leaf.shape, dtype=leaf.dtype), target)


def _mismatch(saved: dict | None, target, partial: bool = False) -> str | None:
  """How the saved arrays differ from target's, or None when they fit or are unreadable.
  partial: target reads some of the saved arrays; only those are compared."""
  if saved is None:
    return None
  wanted = _shapes(target)
  keys = saved.keys() | wanted.keys()
  if partial:
    keys = [k for k in keys if k in wanted or k.split('/')[0] in _WEIGHTS]
  diff = sorted((k for k in keys if saved.get(k) != wanted.get(k)),
                key=lambda k: (not k.startswith('params'), k))  # a layer first, then Adam's copies
  if not diff:
    return None
  more = f' and {len(diff) - 1} more' if len(diff) > 1 else ''
  return f'{diff[0]}: saved {saved.get(diff[0])}, this config {wanted.get(diff[0])}{more}'


def _first_line(e: Exception) -> str:
  return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
