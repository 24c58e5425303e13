"""Many short trainings in one process on in-memory arrays: sweeps, seeds, GPU machines.

No TensorFlow and no checkpoints: the data is an .npz of uint8 images and labels (write one
from any prepared TFDS dataset with --export), the step is the same compiled isx train step,
and the scores are the eval binary's metrics. Results stream to a JSON-lines file.

  python -m isx.sweep --config=configs/fashion_mnist_simplenet.py --npz=fmnist.npz \
      --grid=results/grids/classification.json --out=results/runs.jsonl
"""
import itertools
import json
import time
import types

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from isx import evaluate, models, step as step_lib

config_flags.DEFINE_config_file('config', None, 'Base experiment config.', lock_config=True)
flags.DEFINE_string('npz', None, 'train_images, train_labels, test_images, test_labels.')
flags.DEFINE_string('grid', None, 'JSON list of {"name", "overrides": {key: value}, "seeds"}.')
flags.DEFINE_string('out', None, 'JSON-lines results file (appended to).')
flags.DEFINE_string('only', None, 'Comma-separated run names to run from the grid.')
flags.DEFINE_string('shard', '0/1', 'i/n: run every n-th (run, seed) pair from the i-th, so n '
                    'processes can share one machine.')
flags.DEFINE_string('export', None, 'Write --config\'s TFDS dataset to this .npz and exit.')


def array_batches(images, labels, batch_size, seed, start_step=0):
  """Endless train batches; epoch e is a permutation drawn from (seed, e) alone."""
  per_epoch = len(labels) // batch_size
  for step in itertools.count(start_step):
    epoch, i = divmod(step, per_epoch)
    if i == 0 or step == start_step:
      order = np.random.default_rng([seed, epoch]).permutation(len(labels))
    take = order[i * batch_size:(i + 1) * batch_size]
    yield {'image': images[take], 'label': labels[take]}


def padded_batches(images, labels, batch_size):
  """The whole test set once, padded to full batches, with mask and dataset index."""
  for start in range(0, len(labels), batch_size):
    real = min(batch_size, len(labels) - start)
    pad = lambda a: np.concatenate([a, np.zeros((batch_size - real, *a.shape[1:]), a.dtype)])
    yield {'image': pad(images[start:start + real]), 'label': pad(labels[start:start + real]),
           'index': pad(np.arange(start, start + real)),
           'mask': pad(np.ones(real, np.float32))}


def apply_overrides(config, overrides: dict):
  config = config.copy_and_resolve_references()
  config.lock()  # so that a typo in a key fails instead of adding a field nobody reads
  for key, value in overrides.items():
    *parents, leaf = key.split('.')
    node = config
    for parent in parents:
      node = node[parent]
    node[leaf] = value
  return config


def setup(config, data) -> types.SimpleNamespace:
  """Everything a training loop over data['train_*'] needs: initial state, compiled steps, the
  data sharding, the step rng, the train batch stream and the number of steps."""
  mesh = step_lib.make_mesh()
  step_lib.check_batch_size(config.batch_size, mesh)
  num_classes = int(data['train_labels'].max()) + 1
  image_shape = data['train_images'].shape[1:]
  per_epoch = len(data['train_labels']) // config.batch_size
  steps = config.num_train_steps if config.num_train_steps > 0 else config.num_epochs * per_epoch
  model = models.create_model(config.model, num_classes)
  state = step_lib.create_train_state(config, model, image_shape, num_classes, steps,
                                      jax.random.fold_in(jax.random.key(config.seed), 0))
  train_fn, eval_fn = step_lib.compile_steps(config, mesh, steps)
  return types.SimpleNamespace(
      state=jax.device_put(state, step_lib.replicated(mesh)), train_fn=train_fn,
      eval_fn=eval_fn, sharding=step_lib.data_sharding(mesh),
      rng=jax.random.fold_in(jax.random.key(config.seed), 1),
      batches=array_batches(data['train_images'], data['train_labels'], config.batch_size,
                            config.seed),
      steps=steps, per_epoch=per_epoch)


def eval_outputs(config, data, env, state) -> dict:
  """The eval binary's outputs (logits, embedding, label, index) for data['test_*']."""
  return evaluate.collect_outputs(
      env.eval_fn, state, padded_batches(data['test_images'], data['test_labels'],
                                         config.eval_batch_size), env.sharding)


def run(config, data) -> dict:
  """Trains config on data['train_*'] and returns the eval binary's metrics on data['test_*']."""
  env = setup(config, data)
  state, losses = env.state, []
  start = time.perf_counter()
  for i in range(env.steps):
    state, metrics = env.train_fn(state, step_lib.to_global(next(env.batches), env.sharding),
                                  env.rng)
    if (i + 1) % env.per_epoch == 0 or i + 1 == env.steps:
      losses.append(metrics['loss'])
  losses = [float(v) for v in jax.device_get(losses)]
  train_s = time.perf_counter() - start
  outputs = eval_outputs(config, data, env, state)
  metrics = evaluate.compute_metrics(outputs, tuple(config.retrieval_ks), config.knn_block_size)
  metrics.update(step=env.steps, train_seconds=train_s, epoch_losses=losses,
                 finite=bool(np.all(np.isfinite(losses))))
  return metrics, outputs


def export_npz(config, path):
  import tensorflow_datasets as tfds
  arrays = {}
  for split in ('train', 'test'):
    ds = tfds.as_numpy(tfds.load(config.dataset.name, split=split, data_dir=config.dataset.data_dir,
                                  batch_size=-1, shuffle_files=False))
    arrays[f'{split}_images'], arrays[f'{split}_labels'] = ds['image'], ds['label']
  np.savez_compressed(path, **arrays)


def main(argv):
  del argv
  config = flags.FLAGS.config
  if flags.FLAGS.export:
    return export_npz(config, flags.FLAGS.export)
  data = dict(np.load(flags.FLAGS.npz))
  with open(flags.FLAGS.grid) as f:
    grid = json.load(f)
  only = set(flags.FLAGS.only.split(',')) if flags.FLAGS.only else None
  shard, num_shards = (int(v) for v in flags.FLAGS.shard.split('/'))
  pairs = [(e, seed) for e in grid if not only or e['name'] in only for seed in e.get('seeds', [0])]
  for entry, seed in pairs[shard::num_shards]:
    cfg = apply_overrides(config, {**entry.get('overrides', {}), 'seed': seed})
    try:
      metrics, outputs = run(cfg, data)
    except Exception as e:  # noqa: BLE001  one failed run must not stop a sweep
      print(json.dumps({'name': entry['name'], 'seed': seed, 'error': repr(e)}), flush=True)
      continue
    record = {'name': entry['name'], 'seed': seed, 'overrides': entry.get('overrides', {}),
              'device': jax.devices()[0].device_kind, 'metrics': metrics}
    print(json.dumps(record), flush=True)
    if flags.FLAGS.out:
      with open(flags.FLAGS.out, 'a') as f:
        f.write(json.dumps(record) + '\n')
      if cfg.model.embedding_dim == 2:  # keep 2-D features for the paper's figure
        np.savez_compressed(flags.FLAGS.out.replace('.jsonl', f'_{entry["name"]}_{seed}.npz'),
                            embeddings=outputs['embedding'], labels=outputs['label'])


if __name__ == '__main__':
  app.run(main)
