"""Experiment: what a config builds once, shared by isx.main, isx.eval, isx.sweep and benchmarks/."""
import dataclasses
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp

from isx import checkpointing, input_pipeline, losses, models, step as step_lib


def total_steps(config, info) -> int:
  if config.num_train_steps is not None:
    return int(config.num_train_steps)
  return int(config.num_epochs * input_pipeline.steps_per_epoch(info, config.batch_size))


@dataclasses.dataclass
class Experiment:
  config: Any
  info: input_pipeline.DatasetInfo
  mesh: jax.sharding.Mesh
  model: Any  # a flax module, isx.models.common.EmbeddingModel
  objective: losses.Objective
  total_steps: int
  state: step_lib.TrainState  # replicated over the mesh; restored when a checkpoint was found
  train_fn: Any  # jitted (state, [K, batch] batches, rng) -> (state, [K] metrics)
  eval_fn: Any  # jitted (state, batch) -> {'logits', 'embedding'}
  mngr: Optional[ocp.CheckpointManager] = None  # None without a workdir
  restored: Optional[int] = None  # the step of the restored checkpoint

  @classmethod
  def create(cls, config, workdir: Optional[str] = None,
             info: Optional[input_pipeline.DatasetInfo] = None) -> 'Experiment':
    """Data info, mesh, model, loss, state (restored from workdir's newest good checkpoint) and
    the compiled steps; one line for a config that cannot work (batch vs devices, image size).
    `info` stands in for the dataset when batches come from elsewhere (benchmarks, tests)."""
    info = input_pipeline.dataset_info(config) if info is None else info
    mesh = step_lib.make_mesh()
    step_lib.check_batch_size(config.batch_size, mesh)
    step_lib.check_batch_size(config.eval_batch_size, mesh, 'eval_batch_size')
    model = models.create_model(config.model, info.num_classes)
    models.check_input_shape(model, info.image_shape)
    objective = losses.Objective(config.loss, info.num_classes, model.embedding_dim)
    steps = total_steps(config, info)
    init_rng = jax.random.fold_in(jax.random.key(config.seed), 0)
    state = step_lib.create_train_state(config, model, info.image_shape, objective, steps,
                                        init_rng)
    # Replicated before the restore, so that Orbax reads straight into the global sharding:
    # restored arrays committed to one process's device cannot be moved across hosts.
    state = jax.device_put(state, step_lib.replicated(mesh))
    mngr, restored = None, None
    if workdir is not None:
      mngr = checkpointing.manager(workdir, config.max_checkpoints_to_keep)
      state, restored = checkpointing.restore_latest(mngr, state)
      state = jax.device_put(state, step_lib.replicated(mesh))
    train_fn, eval_fn = step_lib.compile_steps(config, mesh, objective, steps)
    return cls(config, info, mesh, model, objective, steps, state, train_fn, eval_fn, mngr,
               restored)

  @property
  def data_sharding(self):
    return step_lib.data_sharding(self.mesh)
