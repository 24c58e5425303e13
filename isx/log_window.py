"""The train metrics of the steps since the last log write: their means, the steps per second,
and the first step whose loss or weights were not finite."""
import time

import jax
import numpy as np


class LogWindow:

  def __init__(self, start: int):
    self.history, self.first = [], start  # per-dispatch [k] metrics; the step before them
    self._timer = (start, time.perf_counter())

  def add(self, metrics):
    self.history.append(metrics)

  def _stacked(self, key) -> np.ndarray:
    rows = jax.device_get([m[key] for m in self.history])
    return np.concatenate([np.reshape(a, -1) for a in rows] or [np.zeros(0)])

  def first_nonfinite(self) -> int | None:
    """The first step of the window whose loss or updated weights were not finite."""
    if not self.history:
      return None
    bad = np.flatnonzero(~np.isfinite(self._stacked('loss')) |
                         ~self._stacked('params_finite').astype(bool))
    return None if bad.size == 0 else self.first + int(bad[0]) + 1

  def take_means(self, step: int) -> dict:
    """Each metric's mean over the window, and steps_per_s since the last call; starts a new
    window after step."""
    means = {k: float(np.mean(self._stacked(k))) for k in self.history[0]
             if k != 'params_finite'}
    now = time.perf_counter()
    means['steps_per_s'] = (step - self._timer[0]) / max(now - self._timer[1], 1e-9)
    self.history, self.first, self._timer = [], step, (step, now)
    return means
