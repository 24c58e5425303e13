"""The default recipe (ReLU SimpleNet, 200-step warm-up, cosine decay, AdamW 0.05) does what the
paper says IS does: within 250 steps its embedding is far better with IS than without, and
better than with the paper-text variant (no conv activation, constant lr). Deterministic: fixed
data, seeds and steps, one device.

The data is made here: 10 blocky 28x28 class patterns at half contrast under heavy Gaussian
noise (sd 160 on a 0..255 scale), hard enough that 250 steps of batch 32 do not saturate it.
The test checks MAP@R, the retrieval score of the embedding. Accuracy after 250 steps is within
noise of each other for all three arms: with the same data in two different orders, IS won by
2.6 points in one and lost by 0.6 in the other, while the MAP@R gaps were 0.177 and 0.144
(default vs no IS) and 0.066 and 0.054 (default vs paper text).
"""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from isx.datasets import idx, store

# One worker runs the module's fixture (three trainings) once for its three tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('recipe')]

REPO = pathlib.Path(__file__).resolve().parents[1]


def noisy_patterns(n, seed, noise=160.0):
  templates = np.kron(np.random.default_rng(1234).integers(0, 256, (10, 7, 7)), np.ones((4, 4)))
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 10, n)
  images = templates[labels] * 0.5 + rng.normal(0, noise, (n, 28, 28))
  return np.clip(images, 0, 255).astype(np.uint8)[..., None], labels


@pytest.fixture(scope='module')
def scores(tmp_path_factory):
  root = tmp_path_factory.mktemp('recipe')
  splits = {'train': noisy_patterns(2048, 0), 'test': noisy_patterns(500, 1)}
  store.write_dataset('fashion_mnist', idx.VERSION, root / 'data', {
      split: ((i, image, label) for i, (image, label) in enumerate(zip(*arrays)))
      for split, arrays in splits.items()}, (28, 28, 1), idx.LABEL_NAMES['fashion_mnist'])
  short = {'num_train_steps': 250, 'batch_size': 32, 'eval_batch_size': 100}
  arms = {'default': {}, 'no_is': {'model.inward_scale': False},
          'paper_text': {'model.conv_activation': 'none', 'lr_schedule': 'constant'}}
  (root / 'grid.json').write_text(json.dumps(
      [{'name': name, 'overrides': {**short, **o}} for name, o in arms.items()]))
  # One device, in a process of its own: the same binary a user runs, with no collectives.
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=1'}
  sweep = [sys.executable, '-m', 'isx.sweep', '--config=configs/fashion_mnist_simplenet.py',
           f'--config.dataset.data_dir={root / "data"}', f'--grid={root / "grid.json"}',
           f'--out={root / "out"}']
  subprocess.run(sweep, cwd=REPO, env=env, check=True, capture_output=True)
  records = [json.loads(line) for line in (root / 'out' / 'runs_0.jsonl').read_text().splitlines()]
  # The same command again: every run is on record, so none is run or recorded twice.
  again = subprocess.run(sweep, cwd=REPO, env=env, check=True, capture_output=True, text=True)
  return {**{r['name']: r['metrics'] for r in records}, 'again': again.stdout,
          'records': (root / 'out' / 'runs_0.jsonl').read_text().splitlines()}


def test_a_finished_sweep_run_again_runs_and_records_nothing(scores):
  assert len(scores['records']) == 3
  assert [line.split(':')[0] for line in scores['again'].splitlines()] == [
      'default seed 0', 'no_is seed 0', 'paper_text seed 0']


def test_default_embeds_better_with_is_than_without(scores):
  default, no_is = scores['default'], scores['no_is']
  assert default['map@r'] >= no_is['map@r'] + 0.08, (default['map@r'], no_is['map@r'])
  assert min(default['accuracy'], no_is['accuracy']) >= 0.9  # both arms did learn


def test_default_recipe_embeds_better_than_the_paper_text_variant(scores):
  default, paper_text = scores['default'], scores['paper_text']
  assert default['map@r'] >= paper_text['map@r'] + 0.02, (default['map@r'], paper_text['map@r'])
