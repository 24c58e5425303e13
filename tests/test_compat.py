"""Workdirs written by an older isx (before plug-ins) still evaluate and resume: their
config.json is upgraded in memory and their checkpoints' `centers` read as the loss state."""
import json
import os
import shutil

import numpy as np
import orbax.checkpoint as ocp
import pytest

from isx import checkpointing, config_checks, evaluation, train


def _make_old(workdir, centers):
  """Rewrites a finished workdir into the older format, as isx wrote it up to d785d52."""
  path = os.path.join(workdir, 'config.json')
  with open(path) as f:
    saved = json.load(f)
  # Before the plug-ins owned their settings: flat head, loss and retrieval fields, no evals.
  saved['model'].update(head=saved['model']['head']['name'], head_scale=0.0, head_margin=-1.0,
                        stem='cifar', batch_norm=True, dropout_rate=0.4)  # every model once
  # carried GoogleNet's fields
  center = saved['loss'].get('center', {'weight': 0.01, 'alpha': 0.5})
  saved['loss'] = {'name': saved['loss']['name'], 'margin': 1.0, 'contrastive_weight': 1.0,
                   'center_weight': center['weight'], 'center_alpha': center['alpha']}
  retrieval = saved.pop('evals')['retrieval']
  saved.update(retrieval_ks=retrieval['ks'], knn_block_size=retrieval['block_size'],
               eval_every_steps=0)  # once 'every epoch'
  with open(path, 'w') as f:
    json.dump(saved, f)
  mngr = checkpointing.manager(workdir)
  (step,) = mngr.all_steps()
  tree = mngr.restore(step, args=ocp.args.StandardRestore())
  old = {k: v for k, v in tree.items() if k != 'loss_state'}
  old['centers'] = centers
  mngr.close()
  shutil.rmtree(os.path.join(workdir, 'checkpoints', str(step)))
  mngr = checkpointing.manager(workdir)
  mngr.save(step, args=ocp.args.StandardSave(old))
  mngr.wait_until_finished()
  return step


@pytest.mark.slow
def test_an_older_workdir_evaluates_resumes_and_keeps_its_centers(tiny_config, tmp_path):
  from isx.experiment import Experiment
  workdir = str(tmp_path / 'run')
  tiny_config.num_train_steps, tiny_config.loss.name = 3, 'softmax+center'
  before = train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  centers = np.arange(10 * 16, dtype=np.float32).reshape(10, 16)
  _make_old(workdir, centers)
  config = config_checks.saved_config(workdir)  # isx.eval without --config
  assert config.model.head.to_dict() == {'name': 'softmax'} and 'stem' not in config.model
  assert config.loss.center.to_dict() == {'weight': 0.01, 'alpha': 0.5}
  assert config.evals.accuracy.every_steps is None and config.evals.retrieval.every_steps == 0
  exp = Experiment.create(config, workdir)
  assert exp.restored == 3
  np.testing.assert_array_equal(np.asarray(exp.state.loss_state['center']), centers)
  after = evaluation.evaluate_workdir(config_checks.prepare(config), workdir)
  assert after['step'] == 3 and after['accuracy'] == before['accuracy']
  tiny_config.num_train_steps = 5  # today's config resumes it
  assert train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)['step'] == 5


def test_the_dummy_centers_of_runs_without_center_loss_are_dropped(tiny_config, tmp_path):
  workdir = str(tmp_path / 'run')
  tiny_config.num_train_steps = 3
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  _make_old(workdir, np.zeros((1, 1), np.float32))
  state, step = checkpointing.restore_latest(checkpointing.manager(workdir), _fresh_state(tiny_config))
  assert step == 3 and state.loss_state == {}


def _fresh_state(config):
  from isx.experiment import Experiment
  return Experiment.create(config).state
