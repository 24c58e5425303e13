"""docs/extending.md, tried: a model, a head, a loss with state, a dataset and a metric,
each one file in a package of the user's own, named in the config by module path, trained and
evaluated by isx.main's own train_and_evaluate. Copy the file you need from TOYS."""
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from configs import default
import isx.datasets
from isx import config_checks, evaluation, input_pipeline, registry
from isx.datasets import store
from isx.experiment import Experiment

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TOYS = {
    'tiny_mlp.py': '''
        """A model: one hidden layer, then isx's shared classifier (IS, embedding, head)."""
        import flax.linen as nn
        import jax

        from isx.models.common import EmbeddingModel


        class Model(EmbeddingModel):
          hidden: int = 32  # its own field: config.model.hidden

          @nn.compact
          def __call__(self, x, labels=None, train: bool = False, step=None):
            x = x.reshape((x.shape[0], -1))
            return self.classify(jax.nn.relu(nn.Dense(self.hidden)(x)), labels, step=step)
        ''',
    'plain_cosine.py': '''
        """A head: scaled cosine to class weights; its setting: model.head.scale."""
        import flax.linen as nn

        from isx.layers import l2_normalize


        class Head(nn.Module):
          num_classes: int
          scale: float = 8.0

          @nn.compact
          def __call__(self, x, labels=None):
            w = self.param('kernel', nn.initializers.lecun_normal(), (x.shape[-1], self.num_classes))
            return self.scale * l2_normalize(x) @ l2_normalize(w, axis=0)
        ''',
    'norm_anchor.py': '''
        """A loss with state: pulls embedding norms to their running mean, which it keeps; its
        setting: loss.norm_anchor.momentum."""
        import jax
        import jax.numpy as jnp


        class Loss:
          def __init__(self, num_classes, embedding_dim, momentum: float = 0.9):
            self.momentum = momentum

          def init_state(self):
            return jnp.ones((), jnp.float32)

          def __call__(self, outputs, labels, state):
            norms = jnp.linalg.norm(outputs['embedding'], axis=-1)
            return jnp.mean(jnp.square(norms - jax.lax.stop_gradient(state)))

          def update_state(self, state, outputs, labels):
            norms = jnp.linalg.norm(jax.lax.stop_gradient(outputs['embedding']), axis=-1)
            return self.momentum * state + (1 - self.momentum) * jnp.mean(norms)
        ''',
    'bars.py': '''
        """A dataset: writes DATA_DIR/bars (the module's last name) when it is missing; its
        setting: dataset.num_train."""
        import numpy as np

        from isx.datasets import store


        def prepare(data_dir, num_train: int = 64):
          def examples(n, seed):
            rng = np.random.default_rng(seed)
            for i in range(n):
              label = i % 4
              image = rng.integers(0, 40, (12, 12, 1), np.uint8)
              image[3 * label:3 * label + 3] = 255  # a bright bar per class
              yield i, image, label
          store.write_dataset('bars', '1.0.0', data_dir,
                              {'train': examples(num_train, 0), 'test': examples(24, 1)},
                              image_shape=(12, 12, 1), label_names=['a', 'b', 'c', 'd'])
        ''',
    'mean_norm.py': '''
        """A metric: the mean embedding norm of the test split; its setting: the norm's order."""
        import numpy as np


        def compute(outputs, order: int = 2):
          norms = np.linalg.norm(outputs['embedding'], ord=order, axis=-1)
          return {'mean_embedding_norm': float(norms.mean())}


        def summarize(metrics):  # its part of the summary line
          return f'mean norm {metrics["mean_embedding_norm"]:.1f}', {'mean_embedding_norm'}
        ''',
}


@pytest.fixture
def toylab(tmp_path, monkeypatch):
  package = tmp_path / 'code' / 'toylab'
  package.mkdir(parents=True)
  (package / '__init__.py').write_text('')
  for name, text in TOYS.items():
    (package / name).write_text(textwrap.dedent(text).lstrip())
  monkeypatch.syspath_prepend(str(tmp_path / 'code'))
  return tmp_path


def test_one_file_each_model_head_loss_dataset_metric_with_settings_from_the_command_line(toylab):
  workdir = str(toylab / 'run')
  variants = ('dataset=toylab.bars,model=toylab.tiny_mlp,head=toylab.plain_cosine,'
              'loss=softmax+toylab.norm_anchor,evals=accuracy+retrieval+toylab.mean_norm')
  p = subprocess.run(
      [sys.executable, '-m', 'isx.main', f'--config=configs/fashion_mnist_simplenet.py:{variants}',
       f'--workdir={workdir}', '--config.dataset.num_train=48',
       f'--config.dataset.data_dir={toylab / "data"}', '--config.model.hidden=24',
       '--config.model.embedding_dim=8', '--config.model.head.scale=10',
       '--config.loss.norm_anchor.momentum=0.8', '--config.evals.mean_norm.order=1',
       '--config.evals.mean_norm.every_steps=4', '--config.batch_size=16',
       '--config.eval_batch_size=8', '--config.num_train_steps=8', '--config.log_every_steps=4',
       '--config.checkpoint_every_steps=4', '--config.plots=False', '--cpu_devices=1'],
      cwd=ROOT, env={**os.environ, 'PYTHONPATH': os.pathsep.join([str(toylab / 'code'), ROOT])},
      check=True, capture_output=True, text=True)

  assert os.path.isdir(toylab / 'data' / 'bars' / '1.0.0')  # the dataset prepared itself,
  assert store.split_sizes('bars', toylab / 'data') == {'train': 48, 'test': 24}  # as asked
  with open(os.path.join(workdir, 'eval', 'metrics.json')) as f:
    metrics = json.load(f)
  embeddings = np.load(os.path.join(workdir, 'eval', 'embeddings.npz'))['embeddings']
  assert metrics['num_examples'] == 24  # the L1 norm the eval's setting asked for
  assert metrics['mean_embedding_norm'] == pytest.approx(np.abs(embeddings).sum(-1).mean(), rel=1e-5)
  summary = p.stdout.splitlines()[-1]  # the plug-in's own words, not the key
  assert f'| mean norm {metrics["mean_embedding_norm"]:.1f}' in summary, summary
  assert 'mean_embedding_norm' not in summary, summary
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  assert any('test/mean_embedding_norm' in r for r in rows)  # the in-loop eval
  assert all(np.isfinite(r['train/loss_norm_anchor']) for r in rows if 'train/loss' in r)

  config = config_checks.saved_config(workdir)  # every setting, as the command line set it
  assert (config.model.hidden, config.model.head.scale) == (24, 10.0)
  assert config.loss.norm_anchor.to_dict() == {'weight': 1.0, 'momentum': 0.8}
  exp = Experiment.create(config, workdir)  # the loss's state came back from the checkpoint
  assert type(exp.model).__module__ == 'toylab.tiny_mlp' and exp.model.hidden == 24
  assert exp.objective.terms['norm_anchor'].momentum == 0.8
  anchor = float(jax.device_get(exp.state.loss_state['norm_anchor']))
  assert exp.restored == 8 and anchor != 1.0
  params = jax.device_get(exp.state.params)
  assert params['classifier']['Head_0']['kernel'].shape == (8, 4)
  assert evaluation.evaluate_workdir(config_checks.prepare(config), workdir)['mean_embedding_norm'] == pytest.approx(
      metrics['mean_embedding_norm'], rel=1e-6)


def test_a_dataset_file_in_isx_datasets_is_named_by_its_bare_name(toylab, monkeypatch):
  # As if bars.py were copied into isx/datasets/ (no list to edit): the package's path is
  # extended instead of writing into the source tree.
  folder = toylab / 'more_datasets'
  folder.mkdir()
  (folder / 'stripes.py').write_text(textwrap.dedent(TOYS['bars.py']).replace("'bars'", "'stripes'"))
  monkeypatch.setattr(isx.datasets, '__path__', [*isx.datasets.__path__, str(folder)])
  c = default.variant(default.get_config(), 'dataset=stripes')
  c.dataset.data_dir, c.dataset.num_train = str(toylab / 'data'), 16
  info = input_pipeline.dataset_info(c)
  assert (info.name, info.num_classes, info.num_train, info.image_shape) == ('stripes', 4, 16,
                                                                             (12, 12, 1))
  assert 'stripes' in registry.available('datasets', 'prepare')


def test_plugins_that_do_not_exist_are_named_in_one_message(toylab):
  c = default.get_config()
  c.model.name, c.model.head.name, c.loss.name = 'toylab.nope', 'no_such_head', 'softmax+triplet'
  c.evals.f1 = {'type': 'toylab.f1'}
  with pytest.raises(ValueError) as e:
    config_checks.validate(c)
  assert '\n' not in str(e.value)  # one line naming all four
  for text in ("unknown model 'toylab.nope'; choose one of ",
               "unknown head 'no_such_head'; choose one of ",
               "unknown loss 'triplet'; choose one of ",
               "unknown eval 'toylab.f1'; choose one of "):
    assert text in str(e.value)
