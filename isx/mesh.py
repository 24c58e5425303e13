"""The device mesh and shardings every isx step uses: one 'data' axis over all devices of all
processes, batches split on it, the train state replicated."""
import jax


DATA_AXIS = 'data'


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
