"""The device mesh and shardings every isx step uses: one 'data' axis over all devices of all
processes, batches split on it, the train state replicated."""
import jax

from isx import errors

DATA_AXIS = 'data'


def mesh_for(config, devices=None) -> jax.sharding.Mesh:
  """make_mesh, once config's batch sizes are checked against its devices (one line naming
  each size they do not divide): what an Experiment is built on."""
  devices = jax.devices() if devices is None else devices
  check_batch_sizes(config, len(devices))
  return make_mesh(devices)


def check_batch_sizes(config, num_devices=None):
  """config's batch_size and eval_batch_size against num_devices (default: every device)."""
  problems = batch_size_problems(config, num_devices)
  if problems:
    raise errors.ConfigError('; '.join(problems))


def batch_size_problems(config, num_devices=None, keys=('batch_size', 'eval_batch_size')) -> list:
  """One line per batch size of config (keys) that num_devices (default: all) do not divide."""
  num_devices = jax.device_count() if num_devices is None else num_devices
  return [p for key in keys if (p := batch_size_problem(config[key], num_devices, key))]


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh over all devices (of all processes). Auto axis types: with the default
  Explicit types a plain data-parallel gradient step fails with a ShardingTypeError."""
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh((len(devices),), (DATA_AXIS,), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


def data_sharding(mesh):
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(DATA_AXIS))


def chunk_sharding(mesh):
  """K stacked batches [K, batch, ...]: the step axis whole on every device, batch split."""
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, DATA_AXIS))


def replicated(mesh):
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def to_global(batch, sharding):
  """This process's numpy batch -> global jax.Array sharded on the data (batch) axis."""
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)


def batch_size_problem(batch_size: int, num_devices: int, what='batch_size') -> str | None:
  if batch_size % num_devices or batch_size % jax.process_count():
    return (f'{what}={batch_size} is not divisible by the {num_devices} devices '
            f'({jax.process_count()} processes); use a multiple of {num_devices}')
  return None
