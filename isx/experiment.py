"""Experiment: what a config builds once, shared by isx.main, isx.eval, isx.sweep, the CPU probe
and benchmarks/. It needs no TFDS or Grain when given the dataset's info.

    with Experiment.open(config, WORKDIR, 'train') as exp:   # or 'evaluate'

is the one way into a workdir, for train and eval alike.
"""
import contextlib
import dataclasses
from typing import Any, Optional

import jax
import optax
import orbax.checkpoint as ocp

from isx import checkpointing, config_checks, errors, losses, mesh as mesh_lib, models, optim
from isx import step as step_lib
from isx.dataset_info import DatasetInfo, total_steps
from isx.workdir import Workdir
from isx.workdir_lock import WorkdirLock


@dataclasses.dataclass
class Experiment:
  config: Any
  info: DatasetInfo
  mesh: jax.sharding.Mesh
  model: Any  # a flax module, isx.models.common.EmbeddingModel
  objective: losses.Objective
  schedule: Optional[optax.Schedule]  # the learning rate by step (the logged one); None to evaluate
  state: step_lib.TrainState  # replicated over the mesh; restored when a checkpoint was found
  train_fn: Any  # jitted (state, [K, batch] batches, rng) -> (state, [K] metrics); None to evaluate
  eval_fn: Any  # jitted (state, batch) -> {'logits', 'embedding', 'features'}
  mngr: Optional[ocp.CheckpointManager] = None  # None without a workdir
  restored: Optional[int] = None  # the step of the restored checkpoint

  @classmethod
  def create(cls, config, workdir: Optional[str] = None, info: Optional[DatasetInfo] = None,
             mesh: Optional[jax.sharding.Mesh] = None, writer: bool = False,
             trains: bool = True) -> 'Experiment':
    """Data info, mesh, model, loss, state (restored from workdir's newest good checkpoint) and
    the compiled steps; one line for a config that cannot work (batch vs devices, image size).
    With a workdir, config is first checked against the one it was trained with. `info` stands
    in for the dataset when batches come from elsewhere (benchmarks, the CPU probe, tests);
    `mesh` defaults to every device, and config's batch sizes are checked against it here (a
    caller that gives the mesh has checked them, as open does). writer: a training's, which
    clears what a killed training left unfinished in checkpoints/. trains=False (evaluation): no
    optimiser and no train function (schedule, state.opt_state and train_fn None); only the
    weights are read from the checkpoint, its EMA's in their place when it keeps one. Lower
    layers are called in order (workdir, model, devices, optimiser, step), each once."""
    if info is None:
      from isx import input_pipeline  # TFDS: only when the dataset itself is read
      info = input_pipeline.dataset_info(config)
    mngr = None
    if workdir is not None:
      config_checks.check_against_workdir(config, workdir, 'resume' if writer else 'evaluate')
      mngr = checkpointing.manager(workdir, config.max_checkpoints_to_keep, writer)
    try:
      model = models.create_model(config.model, info.num_classes, info.image_shape)
      objective = losses.Objective(config.loss, info.num_classes, model.embedding_dim)
      mesh = mesh_lib.mesh_for(config) if mesh is None else mesh
      tx, schedule = optim.optimizer(config, info) if trains else (None, None)
      init_rng = jax.random.fold_in(jax.random.key(config.seed), 0)
      state = step_lib.create_train_state(model, info.image_shape, objective, tx, init_rng)
      train_fn = (step_lib.compile_train_step(config, mesh, objective, schedule) if trains
                  else None)
      eval_fn = step_lib.compile_embed_step(config, mesh)  # jit compiles at the first call
      # Replicated before the restore, so that Orbax reads straight into the global sharding:
      # restored arrays committed to one process's device cannot be moved across hosts.
      state = jax.device_put(state, mesh_lib.replicated(mesh))
      restored = None
      if mngr is not None:
        state, restored = checkpointing.restore_latest(mngr, state, writer,
                                                       weights_only=not trains)
        # A no-op for today's checkpoints; an older one's converted arrays still need placing.
        state = jax.device_put(state, mesh_lib.replicated(mesh))
    except BaseException:
      if mngr is not None:  # no manager's threads outlive a refused config (isx.tune runs many)
        checkpointing.close(mngr)
      raise
    return cls(config, info, mesh, model, objective, schedule, state, train_fn, eval_fn, mngr,
               restored)

  @property
  def total_steps(self) -> int:
    return total_steps(self.config, self.info)

  @classmethod
  @contextlib.contextmanager
  def open(cls, prepared: config_checks.Prepared, workdir: str, purpose: str):
    """The Experiment of a prepared config (config_checks.prepare) in workdir, for purpose
    'train' (resumes from the newest good checkpoint; process 0 holds the workdir's lock until
    the block ends) or 'evaluate' (reads only, and needs a checkpoint). It checks the config
    against the one the workdir was trained with; every refusal is one line, before anything is
    written."""
    if purpose not in ('train', 'evaluate'):
      raise errors.ConfigError(f"purpose must be 'train' or 'evaluate', got {purpose!r}")
    if not isinstance(prepared, config_checks.Prepared):
      raise TypeError('Experiment.open takes config_checks.prepare(config)')
    config, info = prepared.config, prepared.info
    mesh = mesh_lib.mesh_for(config)  # the device check needs JAX: not in prepare
    wd = Workdir(str(workdir))
    if purpose == 'train':
      wd.make_writable()
    else:
      wd.check_evaluable()
    # One writer per workdir: process 0 holds the lock; gs:// has no hard links to lock with.
    held = purpose == 'train' and jax.process_index() == 0 and '://' not in wd.root
    with WorkdirLock(wd.root) if held else contextlib.nullcontext():
      exp = cls.create(config, wd.root, info, mesh, writer=purpose == 'train',
                       trains=purpose == 'train')
      try:
        if purpose == 'evaluate' and exp.restored is None:
          raise errors.NotFound(wd.no_checkpoint())
        yield exp
      finally:  # however the block ends, no save is left half-written
        checkpointing.close(exp.mngr)

  @property
  def data_sharding(self):
    return mesh_lib.data_sharding(self.mesh)
