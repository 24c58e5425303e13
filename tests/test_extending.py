"""README's "Extending isx", tried: a model, a head, a loss with state, a dataset and a metric,
each one file in a package of the user's own, named in the config by module path, trained and
evaluated by isx.main's own train_and_evaluate. Copy the file you need from TOYS."""
import json
import os
import textwrap

import jax
import numpy as np
import pytest

from configs import default
from isx import config_checks, evaluate, train
from isx.experiment import Experiment

TOYS = {
    'tiny_mlp.py': '''
        """A model: one hidden layer, then isx's shared classifier (IS, embedding, head)."""
        import flax.linen as nn
        import jax

        from isx.models.common import EmbeddingModel


        class Model(EmbeddingModel):
          hidden: int = 32  # its own field: config.model.hidden

          @nn.compact
          def __call__(self, x, labels=None, train: bool = False):
            x = x.reshape((x.shape[0], -1))
            return self.classify(jax.nn.relu(nn.Dense(self.hidden)(x)), labels)
        ''',
    'plain_cosine.py': '''
        """A head: scaled cosine to class weights (model.head_scale sets the scale)."""
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
        """A loss with state: pulls embedding norms to their running mean, which it keeps."""
        import jax
        import jax.numpy as jnp

        from isx.losses import mask_or_ones, masked_mean


        class Loss:
          def __init__(self, loss_config, num_classes, embedding_dim):
            self.momentum = loss_config.get('anchor_momentum', 0.9)

          def init_state(self):
            return jnp.ones((), jnp.float32)

          def __call__(self, outputs, labels, state, mask=None):
            norms = jnp.linalg.norm(outputs['embedding'], axis=-1)
            w = mask_or_ones(mask, norms.shape[0])
            return masked_mean(jnp.square(norms - jax.lax.stop_gradient(state)), w)

          def update_state(self, state, outputs, labels, mask=None):
            norms = jnp.linalg.norm(jax.lax.stop_gradient(outputs['embedding']), axis=-1)
            return self.momentum * state + (1 - self.momentum) * jnp.mean(norms)
        ''',
    'bars.py': '''
        """A dataset: writes DATA_DIR/bars (the module's last name) when it is missing."""
        import numpy as np

        from isx.datasets import store


        def prepare(data_dir):
          def examples(n, seed):
            rng = np.random.default_rng(seed)
            for i in range(n):
              label = i % 4
              image = rng.integers(0, 40, (12, 12, 1), np.uint8)
              image[3 * label:3 * label + 3] = 255  # a bright bar per class
              yield i, image, label
          store.write_dataset('bars', '1.0.0', data_dir,
                              {'train': examples(64, 0), 'test': examples(24, 1)},
                              image_shape=(12, 12, 1), label_names=['a', 'b', 'c', 'd'])
        ''',
    'mean_norm.py': '''
        """A metric: the mean embedding norm of the test split."""
        import numpy as np


        def compute(outputs, config):
          return {'mean_embedding_norm': float(np.linalg.norm(outputs['embedding'], axis=-1).mean())}
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


def test_one_file_each_model_head_loss_dataset_metric(toylab):
  c = default.get_config()
  c.dataset.name, c.dataset.data_dir = 'toylab.bars', str(toylab / 'data')
  c.model = default.model('toylab.tiny_mlp', hidden=24, embedding_dim=8, head='toylab.plain_cosine',
                          head_scale=10.0)
  c.loss.name = 'softmax+toylab.norm_anchor'
  c.evals = ('accuracy', 'retrieval', 'toylab.mean_norm')
  c.loop_evals = ('accuracy', 'toylab.mean_norm')
  c.batch_size, c.eval_batch_size, c.num_train_steps = 16, 8, 8
  c.log_every_steps, c.eval_every_steps, c.checkpoint_every_steps, c.plots = 4, 4, 4, False
  workdir = str(toylab / 'run')
  metrics = train.train_and_evaluate(c, workdir)

  assert os.path.isdir(toylab / 'data' / 'bars' / '1.0.0')  # the dataset prepared itself
  assert metrics['num_examples'] == 24 and metrics['mean_embedding_norm'] > 0
  with open(os.path.join(workdir, 'eval', 'metrics.json')) as f:
    assert json.load(f)['mean_embedding_norm'] == metrics['mean_embedding_norm']
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  assert any('test/mean_embedding_norm' in r for r in rows)  # the in-loop eval
  assert any('eval/mean_embedding_norm' in r for r in rows)  # the final one
  assert all(np.isfinite(r['train/loss_norm_anchor']) for r in rows if 'train/loss' in r)

  exp = Experiment.create(c, workdir)  # the loss's state came back from the checkpoint
  assert type(exp.model).__module__ == 'toylab.tiny_mlp' and exp.model.hidden == 24
  anchor = float(jax.device_get(exp.state.loss_state['norm_anchor']))
  assert exp.restored == 8 and anchor != 1.0
  params = jax.device_get(exp.state.params)
  assert params['classifier']['Head_0']['kernel'].shape == (8, 4)
  assert evaluate.evaluate_workdir(c, workdir)['mean_embedding_norm'] == pytest.approx(
      metrics['mean_embedding_norm'], rel=1e-6)


def test_plugins_that_do_not_exist_are_named_in_one_message(toylab):
  c = default.get_config()
  c.model.name, c.model.head, c.loss.name = 'toylab.nope', 'sphereface', 'softmax+triplet'
  c.evals = ('accuracy', 'toylab.f1')
  with pytest.raises(ValueError) as e:
    config_checks.validate(c)
  assert '\n' not in str(e.value)  # one line naming all four
  for text in ("unknown model 'toylab.nope'; choose one of googlenet, lenet, simplenet",
               "unknown head 'sphereface'; choose one of arcface, cosface, l2_softmax, normface",
               "unknown loss 'triplet'; choose one of center, contrastive, softmax",
               "unknown eval 'toylab.f1'; choose one of accuracy, embedding_norm, retrieval"):
    assert text in str(e.value)
