"""train_and_evaluate(prepared, workdir): the training loop around the compiled step."""
import json
import signal
import sys

import jax
import tqdm
from jax.experimental import multihost_utils

from isx import checkpointing, config_checks, errors, evals, evaluation, input_pipeline, models
from isx.dataset_info import steps_per_epoch
from isx.experiment import Experiment
from isx.log_window import LogWindow
from isx.metric_writers import MetricWriter
from isx.workdir import Workdir


class NonFiniteLossError(errors.UserError, FloatingPointError):
  pass


class StopSignals:
  """Turns SIGTERM (preemption, scancel, kill) and SIGINT (Ctrl-C) into a flag the loop checks
  between steps, so that both save a checkpoint and exit."""

  def __init__(self):
    self.raised, self.name = False, 'SIGTERM'
    # A signal that came after the last training of this process (isx.sweep, isx.tune run
    # several) stops this one at its first step, instead of being dropped with the old handler.
    before = getattr(signal.getsignal(signal.SIGTERM), '__self__', None)
    if isinstance(before, StopSignals) and before.raised:
      self.raised, self.name = True, before.name
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
  with 2, 4 and 8 CPU devices. GPUs and TPUs keep dispatching ahead."""
  local = mesh.local_devices
  return len(local) > 1 and local[0].platform == 'cpu'


def train_and_evaluate(prepared, workdir: str, cpu=None) -> dict:
  """Trains (resuming from the newest good checkpoint in workdir), then runs the evaluation.
  prepared: what config_checks.prepare returned (isx.main prepares it before JAX starts). cpu:
  the isx.cpu_setup.Setup this process started with, recorded in WORKDIR/cpu_setup.json so that
  timings can be compared."""
  with Experiment.open(prepared, workdir, 'train') as exp:
    return _train_and_evaluate(exp, Workdir(workdir), cpu)


def _train_and_evaluate(exp: Experiment, wd: Workdir, cpu) -> dict:
  config, info, workdir = exp.config, exp.info, wd.root
  state, steps, mngr = exp.state, exp.total_steps, exp.mngr
  start = int(jax.device_get(state.step))
  writer = MetricWriter(workdir, resume_step=start)
  _write_run_files(exp, wd, cpu, start)
  loop_evals = evals.periods(config.evals, steps_per_epoch(info, config.batch_size))
  periods = (config.log_every_steps, *loop_evals.values(), config.checkpoint_every_steps)
  step_rng = jax.random.fold_in(jax.random.key(config.seed), 1)
  signals, window = StopSignals(), LogWindow(start)
  batches = input_pipeline.global_train_batches(config, info, exp.mesh, start)
  profile = _ProfileWindow(config.profile_steps, wd.profile)
  wait = waits_for_each_dispatch(exp.mesh)
  with tqdm.tqdm(total=steps, initial=start, disable=jax.process_index() != 0, desc='train',
                 mininterval=1.0 if sys.stderr.isatty() else 30.0, unit='step') as bar:
    s = start
    while s < steps:
      k = chunk_length(s, steps, config.steps_per_dispatch, periods)
      profile.before(s)
      state, metrics = exp.train_fn(state, batches(k), step_rng)
      window.add(metrics)
      if wait:
        jax.block_until_ready(metrics)
      s += k
      profile.after(s, state, last=s == steps)
      bar.update(k)
      # Asked for every step of the chunk: JAX's multi-host sync point counts steps one by one.
      stop = any([signals.should_stop(t) for t in range(s - k + 1, s + 1)])
      if s % config.log_every_steps == 0 or s == steps or stop:
        _check_finite(window, mngr)
        means = window.take_means(s)
        writer.write(s, means)
        bar.set_postfix(loss=f'{means["loss"]:.4f}', acc=f'{means["accuracy"]:.3f}')
      due = {name: config.evals[name] for name, every in loop_evals.items() if s % every == 0}
      if due and s != steps:
        tested = evaluation.compute_metrics(evaluation.eval_outputs(exp, state, due), due,
                                            info.classes)
        split = 'validation' if config.dataset.eval_split == 'validation' else 'test'
        writer.write(s, tested, prefix=split)
        if jax.process_index() == 0:
          bar.write(f'{split} ' + evaluation.summary({**tested, 'step': s, 'split': split}, due))
      if s % config.checkpoint_every_steps == 0 or s == steps or stop:
        _check_finite(window, mngr)
        checkpointing.save(mngr, state, force=stop or s == steps)
      if stop:
        checkpointing.wait_for_save(mngr)
        raise errors.Preempted(f'{signals.name}: saved a checkpoint at step '
                        f'{checkpointing.latest_complete(mngr)} in {mngr.directory}; '
                        f'run the same command again to continue')
  checkpointing.wait_for_save(mngr)
  metrics = evaluation.evaluate_state(exp, state, workdir, writer)
  if jax.process_index() == 0:
    print(evaluation.summary(metrics, config.evals), flush=True)
    if config.plots:
      evaluation.write_plots(exp, workdir, metrics['step'])
  writer.close()
  return metrics


def _write_run_files(exp, wd, cpu, start):
  """Process 0: the config, the CPU setup and the parameter table in the workdir, and what the
  run starts from."""
  if jax.process_index() != 0:
    return
  if exp.restored is not None:
    print(f'resuming from the checkpoint at step {start}', flush=True)
  config_checks.save(exp.config, wd.root)
  if cpu is not None:
    wd.cpu_setup.write_text(json.dumps(cpu.record(), indent=1))
  wd.parameters.write_text(models.parameter_overview(exp.state.params))
  total = sum(p.size for p in jax.tree.leaves(exp.state.params))
  print(f'{type(exp.model).__name__}: {total:,} parameters (each array in {wd.parameters})',
        flush=True)


def _check_finite(window, mngr):
  """Before every log write and every save: stops, saving nothing, at a non-finite step. The
  save in flight, if any, is of a step checked finite: it is finished before the newest complete
  checkpoint is read back from disk and named."""
  bad = window.first_nonfinite()
  if bad is not None:
    checkpointing.wait_for_save(mngr)
    last = checkpointing.latest_complete(mngr)
    kept = (f'The last good checkpoint (step {last}) is kept in {mngr.directory}' if last
            is not None else 'No checkpoint had been saved yet')
    raise NonFiniteLossError(
        f'loss or weights became non-finite at step {bad}; stopped without saving. {kept}. '
        f'Try a lower learning_rate or grad_clip_norm')
