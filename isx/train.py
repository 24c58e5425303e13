"""train_and_evaluate(config, workdir): the training loop around the compiled step."""
import contextlib
import json
import signal
import sys
import time

import jax
import numpy as np
import tqdm
from etils import epath
from jax.experimental import multihost_utils

from isx import checkpointing, config_checks, evaluate, input_pipeline, models
from isx.experiment import Experiment
from isx.metric_writers import MetricWriter
from isx.workdir_lock import WorkdirLock


class NonFiniteLossError(FloatingPointError):
  pass


class Preempted(Exception):
  """A checkpoint was saved on SIGTERM/SIGINT; the binaries exit with its message."""


def check_workdir(workdir: str):
  """Creates workdir and its checkpoints/ (local, or remote such as gs:// through etils.epath,
  as Orbax and TFDS do) and checks that this process can write to both; one line if not. An
  unwritable checkpoints/ found only at the first save made Orbax retry for minutes."""
  try:
    for path in (epath.Path(workdir), epath.Path(workdir) / 'checkpoints'):
      path.mkdir(parents=True, exist_ok=True)
      probe = path / f'.write_test_{jax.process_index()}'  # one per process
      probe.write_text('')
      probe.unlink()
  except Exception as e:  # noqa: BLE001  OSError locally; gcsfs/auth/network errors remotely
    reason = getattr(e, 'strerror', None) or ' '.join(str(e).split())[:200] or type(e).__name__
    raise PermissionError(f'workdir {workdir} is not writable ({reason}); '
                          f'choose another --workdir') from None


class _SigtermFlag:
  """Turns SIGTERM (preemption, scancel, kill) and SIGINT (Ctrl-C) into a flag the loop checks
  between steps, so that both save a checkpoint and exit."""

  def __init__(self):
    self.raised, self.name = False, 'SIGTERM'
    if jax.process_count() == 1:
      signal.signal(signal.SIGTERM, self._handle)
      signal.signal(signal.SIGINT, self._handle)

  def _handle(self, signum, frame):
    del frame
    self.raised, self.name = True, signal.Signals(signum).name

  def should_stop(self, step: int) -> bool:
    if jax.process_count() > 1:  # every process must agree on the step: JAX's sync point does
      return multihost_utils.reached_preemption_sync_point(step)
    return self.raised


class _ProfileWindow:
  """A jax.profiler trace of the dispatches that run steps first+1..last (config.profile_steps),
  written to WORKDIR/profile: TensorBoard's profile plugin, xprof or Perfetto (trace.json.gz)
  read it."""

  def __init__(self, window, folder):
    self.window, self.folder, self.on = tuple(window), str(folder), False

  def before(self, step: int):
    if self.window and not self.on and self.window[0] <= step < self.window[1]:
      jax.profiler.start_trace(self.folder)
      self.on = True

  def after(self, step: int, state, last: bool):
    if self.on and (step >= self.window[1] or last):
      jax.block_until_ready(state)
      jax.profiler.stop_trace()
      self.on = False


def chunk_length(step: int, total: int, per_dispatch: int, periods) -> int:
  """Steps the next dispatch runs: per_dispatch, unless that would step over the end or a
  multiple of one of periods (log, eval, checkpoint), which then come one step at a time."""
  boundary = min([total] + [(step // p + 1) * p for p in periods])
  return per_dispatch if boundary - step >= per_dispatch else 1


def waits_for_each_dispatch(mesh) -> bool:
  """Whether the loop must wait for each dispatch before the next: on CPU with several local
  devices, yes. XLA:CPU launches every device's part of a dispatch from one thread pool of
  max(cores, devices) threads, and launches of later dispatches block their threads (on the
  in-flight limit and on their inputs). When the host runs ahead, they can take every thread
  while the current dispatch still has devices to launch; its all-reduce then waits for them
  forever, and XLA aborts after 40 s ("Expected 4 threads to join the rendezvous"). Reproduced
  with 2, 4 and 8 CPU devices (BENCHMARKS.md). GPUs and TPUs keep dispatching ahead."""
  local = mesh.local_devices
  return len(local) > 1 and local[0].platform == 'cpu'


def _stacked(history, key) -> np.ndarray:
  """One metric over the steps in history (a list of per-dispatch [k] arrays)."""
  return np.concatenate([np.reshape(a, -1) for a in jax.device_get([m[key] for m in history])]
                        or [np.zeros(0)])


def _first_nonfinite(history, first_step):
  bad = np.flatnonzero(~np.isfinite(_stacked(history, 'loss')) |
                       ~_stacked(history, 'params_finite').astype(bool))
  return None if bad.size == 0 else first_step + int(bad[0]) + 1


def train_and_evaluate(config, workdir: str, cpu=None) -> dict:
  """Trains (resuming from the newest good checkpoint in workdir), then runs the evaluation.
  cpu: the isx.cpu_setup.Setup this process started with, recorded in WORKDIR/cpu_setup.json
  so that timings can be compared."""
  info = input_pipeline.dataset_info(config)
  config_checks.validate(config, info)
  check_workdir(workdir)
  # One writer per workdir: process 0 holds the lock; a gs:// workdir has no O_EXCL to lock with.
  held = jax.process_index() == 0 and '://' not in str(workdir)
  with WorkdirLock(workdir) if held else contextlib.nullcontext():
    return _train_and_evaluate(config, workdir, cpu, info)


def _train_and_evaluate(config, workdir: str, cpu, info) -> dict:
  config_checks.check_against_workdir(config, workdir, 'resume')
  exp = Experiment.create(config, workdir, info)
  info, steps, state, mngr = exp.info, exp.total_steps, exp.state, exp.mngr
  start = int(jax.device_get(state.step))
  if exp.restored is not None and jax.process_index() == 0:
    print(f'resuming from the checkpoint at step {start}', flush=True)
  writer = MetricWriter(workdir, resume_step=start)
  if jax.process_index() == 0:
    config_checks.save(config, workdir)
    if cpu is not None:
      (epath.Path(workdir) / 'cpu_setup.json').write_text(json.dumps(cpu.record(), indent=1))
    (epath.Path(workdir) / 'parameters.txt').write_text(models.parameter_overview(state.params))
    total = sum(p.size for p in jax.tree.leaves(state.params))
    print(f'{type(exp.model).__name__}: {total:,} parameters (each array in '
          f'{workdir}/parameters.txt)', flush=True)
  per_epoch = input_pipeline.steps_per_epoch(info, config.batch_size)
  eval_every = config.eval_every_steps or per_epoch
  step_rng = jax.random.fold_in(jax.random.key(config.seed), 1)
  sigterm = _SigtermFlag()
  batches = input_pipeline.global_train_batches(config, info, exp.mesh, start)
  history, history_start = [], start
  bar = tqdm.tqdm(total=steps, initial=start, disable=jax.process_index() != 0,
                  mininterval=1.0 if sys.stderr.isatty() else 30.0, desc='train', unit='step')
  timer = (start, time.perf_counter())

  def check_finite():  # before every log write and every save
    bad = _first_nonfinite(history, history_start)
    if bad is not None:
      last = mngr.latest_step()
      kept = (f'The last good checkpoint (step {last}) is kept in {mngr.directory}' if last
              is not None else 'No checkpoint had been saved yet')
      raise NonFiniteLossError(
          f'loss or weights became non-finite at step {bad}; stopped without saving. {kept}. '
          f'Try a lower learning_rate or grad_clip_norm')

  def take_means():  # the log window: every step since the last log write
    nonlocal history, history_start
    means = {k: float(np.mean(_stacked(history, k))) for k in history[0] if k != 'params_finite'}
    history, history_start = [], history_start + sum(len(m['loss']) for m in history)
    return means

  profile = _ProfileWindow(config.profile_steps, epath.Path(workdir) / 'profile')
  wait = waits_for_each_dispatch(exp.mesh)
  try:  # an error line starts on a line of its own, not after the bar
    s = start
    while s < steps:
      k = chunk_length(s, steps, config.steps_per_dispatch,
                       (config.log_every_steps, eval_every, config.checkpoint_every_steps))
      profile.before(s)
      state, metrics = exp.train_fn(state, batches(k), step_rng)
      history.append(metrics)
      if wait:
        jax.block_until_ready(metrics)
      s += k
      profile.after(s, state, last=s == steps)
      bar.update(k)
      # Asked for every step of the chunk: JAX's multi-host sync point counts steps one by one.
      stop = any([sigterm.should_stop(t) for t in range(s - k + 1, s + 1)])
      if s % config.log_every_steps == 0 or s == steps or stop:
        check_finite()
        means = take_means()
        now = time.perf_counter()
        means['steps_per_s'] = (s - timer[0]) / max(now - timer[1], 1e-9)
        timer = (s, now)
        writer.write(s, means)
        bar.set_postfix(loss=f'{means["loss"]:.4f}', acc=f'{means["accuracy"]:.3f}')
      if s % eval_every == 0 and s != steps:
        tested = evaluate.compute_metrics(evaluate.eval_outputs(exp, state), config.loop_evals,
                                          config)
        writer.write(s, tested, prefix='test')
        if jax.process_index() == 0:
          bar.write('test ' + evaluate.summary({**tested, 'step': s}))
      if s % config.checkpoint_every_steps == 0 or s == steps or stop:
        check_finite()
        checkpointing.save(mngr, state, force=stop or s == steps)
      if stop:
        checkpointing.finish(mngr)
        bar.close()
        raise Preempted(f'{sigterm.name}: saved a checkpoint at step {s} in {mngr.directory}; '
                        f'run the same command again to continue')
  except BaseException:
    bar.close()
    raise
  bar.close()
  checkpointing.finish(mngr)
  metrics = evaluate.evaluate_state(exp, state, workdir, writer)
  if jax.process_index() == 0:
    print(evaluate.summary(metrics), flush=True)
    if config.plots:
      evaluate.write_plots(config, info, workdir)
  writer.close()
  return metrics
