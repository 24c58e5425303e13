"""Defaults every experiment starts from; each configs/NAME.py imports and edits them.

python -m isx.main --config=configs/fashion_mnist_simplenet.py --workdir=workdirs/fmnist

The plug-ins' own settings (the head's scale and margin, each loss term's, each eval's) are not
written here: `variant` fills them in from the plug-ins' defaults (isx.config_checks.
fill_defaults), so that the command line can set them: --config.model.head.margin=0.3.
"""
import dataclasses

import jax.numpy as jnp
import ml_collections
from ml_collections import config_dict

from isx import config_checks, datasets
from isx.models import common


def model(name='simplenet', **fields):
  """config.model for a model: name (isx/models/NAME.py, or a module path), the fields every
  isx model takes at their defaults (isx.models.common.SharedFields; the head as {'name':
  'softmax'}, to which the head's settings are added), then `fields`, the model's own (its
  class's fields). The model gets them all as keyword arguments."""
  shared = {f.name: f.default for f in dataclasses.fields(common.SharedFields)
            if f.default is not dataclasses.MISSING and f.name not in ('parent', 'name')}
  shared.update(head=ml_collections.ConfigDict({'name': 'softmax'}),
                dtype=jnp.dtype(shared['dtype']).name)
  return ml_collections.ConfigDict({'name': name, **shared, **fields})


def get_config():
  c = ml_collections.ConfigDict()
  c.dataset = ml_collections.ConfigDict(dict(
      name='fashion_mnist',
      data_dir=ml_collections.FieldReference(None, field_type=str),  # None: TFDS_DATA_DIR or ~/tensorflow_datasets
      train_split='train',
      eval_split='test',
      standardize=False,  # the paper: pixels in [0, 1], nothing else
      augment=False,  # random crop (4 px pad) + horizontal flip; not used by the paper
      # Score the mean of each test image's and its mirror's logits and embeddings (an eval
      # choice: a trained workdir can be scored either way); not used by the paper.
      test_time_flip=False,
      device_resident=True,  # keep the train split on every device; batches gathered there
      num_workers=4,  # Grain threads that read and decode (host-fed training, eval)
      download=True,  # mnist, fashion_mnist, cifar10/100, svhn: fetch and prepare when missing
      # isx.class_split: the classes that train ('all' | 'first_half' | '0-4' | '0,2,5'; the
      # others are held out and scored), and a validation split for selection: the last N
      # training classes (open-set) or a seeded fraction of the training examples (closed-set);
      # validation_fold F picks another such group (0: the last N classes, the first slice of
      # the fraction), so that runs over F validate on k folds (isx/class_split.py).
      classes='all',
      validation_classes=0,
      validation_fraction=0.0,
      validation_fold=0,
  ))
  # SimpleNet's conv_activation: 'relu' (the authors' code, the default) or 'none' (paper text)
  c.model = model('simplenet', conv_activation='relu')
  # Terms in isx/losses joined by '+': softmax | softmax+contrastive | softmax+center; each
  # term's settings (weight, ...) in loss.<term>.
  c.loss = ml_collections.ConfigDict(dict(name='softmax'))
  c.batch_size = 128  # global, over all devices and processes
  c.eval_batch_size = 1000
  c.num_epochs = 20
  c.num_train_steps = config_dict.placeholder(int)  # None: num_epochs x steps per epoch
  c.optimizer = 'adam'
  c.learning_rate = 1e-2  # the paper's Adam lr
  c.lr_schedule = 'cosine'  # constant | cosine (to 0 after the warm-up) | step (x0.1 at 50% and 75%)
  # Linear warm-up to learning_rate (the paper's "initial learning rate"): Adam's first steps move
  # every weight by ~lr, a large fraction of the deep convs' norms, which without BatchNorm
  # inflates them and slows all later learning (docs/configs.md, the default recipe).
  c.warmup_steps = 200
  # Decoupled (AdamW: w -= lr * wd * w each step). The paper gives neither the form nor the value;
  # docs/configs.md says why this one.
  c.weight_decay = 0.05
  c.weight_decay_form = 'adamw'  # 'adamw' | 'l2': wd * w added to the gradient (L2 in the loss)
  c.grad_clip_norm = 0.0  # 0: off
  # An EMA of the weights, kept beside them; evals score it instead of the weights. 0: off.
  c.ema_decay = 0.0
  c.seed = 0
  # Train steps per jitted call (a lax.scan over K batches): the host dispatches once per K steps.
  # Params are bit-identical for any K; logs, evals and saves still land on their exact steps.
  c.steps_per_dispatch = 1
  c.profile_steps = ()  # (first, last): a jax.profiler trace of those steps in WORKDIR/profile
  c.log_every_steps = 50
  c.checkpoint_every_steps = 1000
  c.max_checkpoints_to_keep = 3
  # isx/evals, each run at the end and by isx.eval; every_steps: also in the loop every N steps
  # (None: once per epoch; 0, the default: never). retrieval's settings: ks, block_size.
  c.evals = ml_collections.ConfigDict({
      'accuracy': {'every_steps': config_dict.placeholder(int)}, 'retrieval': {},
      'embedding_norm': {}})
  c.plots = True
  return c


VARIANTS = {
    'baseline': 'the paper\'s without-IS arm: model.inward_scale=False, nothing else changed',
    'dataset=NAME': 'the dataset NAME (isx/datasets, or a module path) with its default settings',
    'model=NAME': 'the model NAME (isx/models, or a module path) with its default fields',
    'head=NAME': 'the head NAME (isx/heads, or a module path) with its default settings',
    'loss=TERMS': 'the loss TERMS (e.g. softmax+center) with each term\'s default settings',
    'evals=NAMES': 'the evals NAMES (e.g. accuracy+retrieval), those of the config keeping theirs',
}


def variant(c, arg):
  """Applies the comma-separated variants named after the config path
  (`--config=configs/NAME.py:baseline,head=arcface`), then fills in the settings of every
  plug-in the config names, so that the command line can set any of them."""
  for part in filter(None, (arg or '').split(',')):
    key, _, value = part.partition('=')
    if part == 'baseline':
      c.model.inward_scale = False
    elif key == 'dataset' and value:
      for setting in [k for k in c.dataset if k not in datasets.CORE]:  # the config's dataset's
        del c.dataset[setting]
      c.dataset.name = value
    elif key == 'model' and value:
      c.model = model(value, head=c.model.head)
    elif key == 'evals' and value:
      c.evals = {n.rsplit('.', 1)[-1]: c.evals.get(n, {}) if '.' not in n else {'type': n}
                 for n in value.split('+')}
    elif key == 'head' and value:
      c.model.head = {'name': value}
    elif key == 'loss' and value:
      c.loss = {'name': value}
    else:
      raise ValueError(f'unknown config variant {part!r}; use a comma-separated list of: ' +
                       '; '.join(f'{k} ({v})' for k, v in VARIANTS.items()))
  return config_checks.fill_defaults(c)
