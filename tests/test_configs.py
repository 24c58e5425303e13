"""Every file in configs/ (and its :baseline variant) trains 2 steps and evaluates through
isx.main's own code path, on a tiny ArrayRecord dataset of the right name, shapes and classes;
but configs/imagenet_googlenet.py, whose model takes a minute to compile at 224x224 on 2 cores:
it is resolved, its images read and resized, and its model traced (shapes only).
configs/cifar100_googlenet.py trains the same model at 32x32."""
import importlib
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from isx import config_checks, input_pipeline, models, train
from isx.datasets import store

CONFIGS = sorted(p.stem for p in (pathlib.Path(__file__).parents[1] / 'configs').glob('*.py')
                 if p.stem not in ('__init__', 'default'))
# name -> (stored image shape, classes). ImageNet is stored smaller than the 224x224 the model
# takes, so its resize path runs too.
DATASETS = {'mnist': ((28, 28, 1), 10), 'fashion_mnist': ((28, 28, 1), 10),
            'cifar10': ((32, 32, 3), 10), 'cifar100': ((32, 32, 3), 100),
            'svhn_cropped': ((32, 32, 3), 10), 'imagenet2012': ((40, 48, 3), 1000),
            'urdu_characters': ((64, 64, 1), 40), 'glyphs': ((28, 28, 1), 155)}
# Test examples per dataset (default 12): the open-set configs score only their held-out
# classes (CIFAR100's last 50, FashionMNIST's 5-9, glyphs' last 78), and retrieval's ks need more
# than 10 of them.
NUM_TEST = {'cifar100': 40, 'fashion_mnist': 24, 'glyphs': 40}


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('all_datasets')
  rng = np.random.default_rng(0)
  for name, (shape, classes) in DATASETS.items():
    # Labels spread over all classes (53 is coprime with every class count here).
    examples = lambda n: ((i, rng.integers(0, 256, shape), (53 * i) % classes) for i in range(n))
    store.write_dataset(name, '1.0.0', root,
                        {'train': examples(16), 'test': examples(NUM_TEST.get(name, 12))},
                        shape, [str(c) for c in range(classes)])
  return root


def test_every_config_is_covered():
  used = {importlib.import_module(f'configs.{name}').get_config().dataset.name for name in CONFIGS}
  assert used <= set(DATASETS) and len(CONFIGS) >= 10


TRACED = ('imagenet_googlenet',)


def test_imagenet_googlenet_resolves_reads_resized_images_and_traces(data_dir):
  config = importlib.import_module('configs.imagenet_googlenet').get_config()
  config.dataset.data_dir = str(data_dir)
  config.batch_size, config.eval_batch_size, config.dataset.num_workers = 8, 8, 1
  info = input_pipeline.dataset_info(config)
  config = config_checks.validate(config, info)
  batch = next(input_pipeline.train_batches(config, info))
  assert batch['image'].shape == (8, 224, 224, 3) and info.num_classes == 1000
  model = models.create_model(config.model, info.num_classes)
  x = jnp.zeros((8, 224, 224, 3))
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
  out = jax.eval_shape(lambda v: model.apply(v, x), variables)
  assert out['logits'].shape == (8, 1000) and out['embedding'].shape == (8, 1024)


@pytest.mark.slow
@pytest.mark.parametrize('name', [c for c in CONFIGS if c not in TRACED])
def test_config_trains_two_steps_and_evaluates(name, data_dir, tmp_path):
  arg = 'baseline' if name == 'fashion_mnist_simplenet' else None
  config = importlib.import_module(f'configs.{name}').get_config(arg)
  config.dataset.data_dir = str(data_dir)
  config.batch_size, config.eval_batch_size, config.num_train_steps = 8, 8, 2
  config.plots = False
  metrics = train.train_and_evaluate(config_checks.prepare(config), str(tmp_path))
  assert metrics['step'] == 2
  if 'retrieval' in config.evals:  # the fast recipe leaves it out, for time
    assert np.isfinite(metrics['map@r'])
  if config.dataset.classes == 'all':
    assert metrics['num_examples'] == NUM_TEST.get(config.dataset.name, 12)
    assert 0.0 <= metrics['accuracy'] <= 1.0
  else:  # the held-out classes' test examples, and no accuracy
    trained = metrics['train_classes']
    assert 'accuracy' not in metrics and not set(trained) & set(metrics['scored_classes'])
