"""Evaluation: test-set outputs -> the metrics of config.evals -> writers and eval/ files; and
isx.eval's logic, evaluate_workdir."""
import json

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from isx import class_split, errors, evals, input_pipeline, mesh as mesh_lib
from isx import metric_writers
from isx.experiment import Experiment
from isx.metric_writers import MetricWriter
from isx.workdir import Workdir


def collect_outputs(eval_fn, state, batches, sharding, keys=evals.OUTPUTS):
  """Runs eval_fn over padded global batches; returns numpy labels and the model outputs named
  by keys (logits and embeddings; backbone features when an eval needs them) in dataset order,
  every example exactly once (padding dropped by mask, order by index)."""
  chunks = {k: [] for k in (*keys, 'label', 'index', 'mask')}
  for local in batches:
    batch = mesh_lib.to_global(local, sharding)
    out = eval_fn(state, batch)
    gathered = multihost_utils.process_allgather(  # only what is scored crosses to the host
        {**{k: out[k] for k in keys}, 'label': batch['label'], 'index': batch['index'],
         'mask': batch['mask']}, tiled=True)
    for k in chunks:
      chunks[k].append(np.asarray(gathered[k]))
  cat = {k: np.concatenate(v) for k, v in chunks.items()}
  keep = cat['mask'] > 0
  order = np.argsort(cat['index'][keep], kind='stable')
  return {k: cat[k][keep][order] for k in (*keys, 'label', 'index')}


def eval_outputs(exp: Experiment, state, evals_config=None):
  """The eval split's outputs that evals_config's metrics read (default: config.evals)."""
  keys = evals.outputs(exp.config.evals if evals_config is None else evals_config)
  return collect_outputs(exp.eval_fn, state, input_pipeline.eval_batches(exp.config, exp.info),
                         exp.data_sharding, keys)


def compute_metrics(outputs, evals_config, classes=None) -> dict:
  """The metrics of evals_config (config.evals or part of it), the number of examples, and how
  many of their embeddings hold a non-finite value (a diverged checkpoint's: the metrics are
  still written, and say so). classes: the training classes when the model trained on a subset
  (info.classes): scored examples of those classes are numbered as the head's outputs; when
  held-out classes are scored, the evals that need the head's classes (accuracy) are not run,
  and `not_computed` names them."""
  skipped, unseen, why = [], [], ''
  if classes is not None:
    head = class_split.head_labels(outputs['label'], classes)
    if np.all(head >= 0):
      outputs = {**outputs, 'label': head}
    else:
      labels = np.asarray(outputs['label'])
      unseen = sorted(int(c) for c in np.unique(labels[head < 0]))
      seen = len(np.unique(labels[head >= 0]))
      why = ('the scored classes are held out of training' if not seen else
             f'{len(unseen)} of the scored classes ({",".join(map(str, unseen))}) were held out '
             f'of training, beside {seen} trained ones')
      skipped = sorted(label for label, settings in evals_config.items()
                       if evals.on_training_classes(settings))
      evals_config = {k: v for k, v in evals_config.items() if k not in skipped}
  nonfinite = int(np.sum(~np.all(np.isfinite(outputs['embedding']), axis=-1)))
  metrics = {**evals.compute(outputs, evals_config), 'num_examples': int(len(outputs['label'])),
             'num_nonfinite_embeddings': nonfinite}
  if unseen:  # every metric's reader can tell a score over unseen classes
    metrics['unseen_classes'] = unseen
  if skipped:
    metrics['not_computed'] = [f'{label}: {why}' for label in skipped]
  return metrics


def metric_names(config, info) -> set:
  """The names of the metrics that config's evaluation reports on its eval split (info), found
  by scoring random outputs of the split's classes: what a tuning objective may name."""
  classes = input_pipeline.eval_classes(info)
  n = max(2 * len(classes), min(info.num_eval, 64))
  rng = np.random.default_rng(0)
  outputs = {'embedding': rng.normal(size=(n, config.model.embedding_dim)).astype(np.float32),
             'features': rng.normal(size=(n, config.model.embedding_dim)).astype(np.float32),
             'logits': rng.normal(size=(n, info.num_classes)).astype(np.float32),
             'label': np.resize(np.asarray(classes), n), 'index': np.arange(n)}
  return set(compute_metrics(outputs, config.evals, info.classes))


class EvalWriteError(errors.UserError, OSError):
  pass


def write_results(workdir: str, metrics: dict, outputs) -> str:
  """Writes metrics.json and embeddings.npz (which records its split) in the split's eval
  folder (eval/ for the test split, eval/SPLIT/ for any other: an eval of another split never
  overwrites the test results), process 0 only; returns the folder."""
  wd = Workdir(workdir)
  split = metrics.get('split', 'test')
  out_dir = wd.eval_dir_of(split)
  if jax.process_index() == 0:
    try:
      out_dir.mkdir(parents=True, exist_ok=True)
      with (out_dir / 'embeddings.npz').open('wb') as f:
        np.savez(f, embeddings=outputs['embedding'].astype(np.float32),
                 labels=outputs['label'].astype(np.int64),
                 logits=outputs['logits'].astype(np.float32), split=np.array(split))
      (out_dir / 'metrics.json').write_text(json.dumps(metrics, indent=2, sort_keys=True))
    except OSError as e:  # e.g. a full disk: the checkpoint it evaluated is already saved
      raise EvalWriteError(f'cannot write the eval results to {out_dir} ({e.strerror or e}); '
                           f'free some space, then python -m isx.eval --workdir={workdir} '
                           f'writes them again from the saved checkpoint') from None
  return out_dir


# What scoring adds to the evals' metrics: the summary line's context, never printed raw.
CONTEXT = ('step', 'num_examples', 'split', 'train_classes', 'scored_classes', 'not_computed',
           'unseen_classes', 'num_nonfinite_embeddings')


def summary(metrics: dict, evals_config) -> str:
  """One line: the step, a warning for non-finite embeddings, then each eval's part as its
  plug-in prints it (isx.evals.summarize)."""
  scored = f'{metrics["num_examples"]} {metrics.get("split", "test")} examples'
  if 'scored_classes' in metrics:
    scored += f' of classes {",".join(map(str, metrics["scored_classes"]))}'
  parts = [scored]
  if metrics.get('num_nonfinite_embeddings'):
    parts.append(f'{metrics["num_nonfinite_embeddings"]} embeddings NOT FINITE')
  parts += evals.summarize({k: v for k, v in metrics.items() if k not in CONTEXT}, evals_config)
  return f'step {metrics["step"]}: ' + ' | '.join(parts)


def evaluate_state(exp: Experiment, state, workdir: str, writer) -> dict:
  """The final evaluation: config.evals on the test split, written to eval/ files and as eval/*
  scalars in metrics.jsonl and TensorBoard (writer) at the state's step."""
  outputs = eval_outputs(exp, state, exp.config.evals)
  metrics = compute_metrics(outputs, exp.config.evals, exp.info.classes)
  metrics['step'] = int(jax.device_get(state.step))
  metrics['split'] = exp.config.dataset.eval_split
  if exp.info.classes is not None:
    metrics['train_classes'] = [int(c) for c in exp.info.classes]
    metrics['scored_classes'] = sorted(int(c) for c in np.unique(outputs['label']))
  prefix = 'eval' if metrics['split'] == 'test' else f'eval_{metrics["split"]}'
  writer.write(metrics['step'], {k: v for k, v in metrics.items() if k != 'step'}, prefix=prefix,
               replace=True)
  norms = np.linalg.norm(np.asarray(outputs['embedding'], np.float64), axis=-1)
  writer.histogram(metrics['step'], f'{prefix}/embedding_norm', norms[np.isfinite(norms)])
  out_dir = write_results(workdir, metrics, outputs)
  logging.info('wrote %s/metrics.json and embeddings.npz', out_dir)
  return metrics


def write_plots(exp: Experiment, workdir: str, step: int):
  """The PNGs in the workdir, and as TensorBoard images at step: of the test split's results
  only (another split's eval leaves them as they are)."""
  if exp.config.dataset.eval_split != 'test':
    return
  from isx import plots  # matplotlib only when plots are asked for
  plots.plot_workdir(workdir,
                     lambda idx: input_pipeline.read_eval_images(exp.config, exp.info, idx))
  metric_writers.write_pictures(workdir, step)


def evaluate_workdir(prepared, workdir: str) -> dict:
  """isx.eval: scores the newest good checkpoint in workdir (fails if there is none) with a
  prepared config (config_checks.prepare), writes the metrics and embeddings, prints their
  summary, then draws the pictures."""
  with Experiment.open(prepared, workdir, 'evaluate') as exp:
    writer = MetricWriter(workdir, resume_step=None)
    metrics = evaluate_state(exp, exp.state, workdir, writer)
    writer.close()
  if jax.process_index() == 0:
    print(summary(metrics, exp.config.evals), flush=True)
    if exp.config.plots:
      write_plots(exp, workdir, metrics['step'])
  return metrics
