"""Orbax checkpoints: atomic saves, keep the newest N, restore the newest one that reads back.

Orbax writes each step to a temporary folder and renames it when complete, so a crash mid-save
leaves no "latest" checkpoint behind; a committed checkpoint that is later damaged (truncated
file) fails to restore and is skipped in favour of the next newest. Nothing here deletes a
checkpoint: only Orbax's max_to_keep does, after a newer one has been committed.
"""
import os

import jax
import orbax.checkpoint as ocp
from absl import logging


def manager(workdir: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), 'checkpoints'),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))


def _restorable(state):
  """The arrays of a TrainState (its tx and apply_fn are code, rebuilt from the config)."""
  return {'step': state.step, 'params': state.params, 'opt_state': state.opt_state,
          'batch_stats': state.batch_stats, 'centers': state.centers}


def save(mngr: ocp.CheckpointManager, state, force: bool = False) -> bool:
  step = int(jax.device_get(state.step))
  return mngr.save(step, args=ocp.args.StandardSave(_restorable(state)), force=force)


class CheckpointMismatchError(ValueError):
  pass


def restore_latest(mngr: ocp.CheckpointManager, state):
  """Returns (state restored from the newest readable checkpoint, its step), or (state, None).

  Damaged checkpoints are reported and skipped. A checkpoint whose arrays do not fit `state`
  (another model config) is an error, not damage: it is reported with what to do.
  """
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, _restorable(state))
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      restored = mngr.restore(step, args=ocp.args.StandardRestore(target))
    except (ValueError, KeyError) as e:
      if _is_mismatch(e):
        raise CheckpointMismatchError(
            f'checkpoint {step} in {mngr.directory} was written by a different model config '
            f'({_first_line(e)}); use the config it was trained with or a new --workdir') from None
      logging.warning('checkpoint %d in %s is damaged (%s); trying an older one', step,
                      mngr.directory, _first_line(e))
      continue
    except Exception as e:  # noqa: BLE001  any read failure means this step is unusable
      logging.warning('checkpoint %d in %s is damaged (%s); trying an older one', step,
                      mngr.directory, _first_line(e))
      continue
    return state.replace(**restored), step
  return state, None


def _is_mismatch(e: Exception) -> bool:
  text = str(e).lower()
  return any(k in text for k in ('shape', 'structure', 'tree', 'missing', 'unexpected key'))


def _first_line(e: Exception) -> str:
  return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
