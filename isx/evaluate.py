"""The eval binary's logic: test-set outputs -> accuracy + retrieval metrics -> eval/ files."""
import json

import jax
import numpy as np
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

from isx import retrieval, step as step_lib


def collect_outputs(eval_fn, state, batches, sharding):
  """Runs eval_fn over padded global batches; returns numpy logits, embeddings, labels in
  dataset order, every example exactly once (padding dropped by mask, order by index)."""
  chunks = {'logits': [], 'embedding': [], 'label': [], 'index': [], 'mask': []}
  for local in batches:
    batch = step_lib.to_global(local, sharding)
    out = eval_fn(state, batch)
    gathered = multihost_utils.process_allgather(
        {**out, 'label': batch['label'], 'index': batch['index'], 'mask': batch['mask']},
        tiled=True)
    for k in chunks:
      chunks[k].append(np.asarray(gathered[k]))
  cat = {k: np.concatenate(v) for k, v in chunks.items()}
  keep = cat['mask'] > 0
  order = np.argsort(cat['index'][keep], kind='stable')
  return {k: cat[k][keep][order] for k in ('logits', 'embedding', 'label', 'index')}


def compute_metrics(outputs, ks=(1, 5, 10), block_size=1024) -> dict:
  metrics = {'accuracy': float(np.mean(np.argmax(outputs['logits'], -1) == outputs['label']))}
  metrics.update(retrieval.retrieval_metrics(outputs['embedding'], outputs['label'], ks,
                                             block_size=block_size))
  metrics['num_examples'] = int(len(outputs['label']))
  return metrics


def write_results(workdir: str, metrics: dict, outputs) -> str:
  """Writes eval/metrics.json and eval/embeddings.npz (process 0 only); returns the folder."""
  out_dir = epath.Path(workdir) / 'eval'
  if jax.process_index() == 0:
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / 'embeddings.npz').open('wb') as f:
      np.savez(f, embeddings=outputs['embedding'].astype(np.float32),
               labels=outputs['label'].astype(np.int64), logits=outputs['logits'].astype(np.float32))
    (out_dir / 'metrics.json').write_text(json.dumps(metrics, indent=2, sort_keys=True))
  return out_dir


def summary(metrics: dict, ks=(1, 5, 10)) -> str:
  recall = '/'.join(f'{100 * metrics[f"recall@{k}"]:.2f}' for k in ks)
  precision = '/'.join(f'{100 * metrics[f"precision@{k}"]:.2f}' for k in ks)
  ks_text = '/'.join(str(k) for k in ks)
  return (f'step {metrics["step"]}: accuracy {100 * metrics["accuracy"]:.2f}% on '
          f'{metrics["num_examples"]} test examples | Recall@{ks_text} {recall} | '
          f'Precision@{ks_text} {precision} | MAP@R {100 * metrics["map@r"]:.2f}')


def evaluate_state(config, state, eval_fn, info, sharding, workdir: str, writer) -> dict:
  """The final evaluation: eval/ files, and every metric as eval/* scalars in metrics.jsonl and
  TensorBoard (writer) at the checkpoint's step."""
  from isx import input_pipeline
  outputs = collect_outputs(eval_fn, state, input_pipeline.eval_batches(config, info), sharding)
  metrics = compute_metrics(outputs, tuple(config.retrieval_ks), config.knn_block_size)
  metrics['step'] = int(jax.device_get(state.step))
  writer.write(metrics['step'], {k: v for k, v in metrics.items() if k != 'step'}, prefix='eval')
  out_dir = write_results(workdir, metrics, outputs)
  logging.info('wrote %s/metrics.json and embeddings.npz', out_dir)
  return metrics
