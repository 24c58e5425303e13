"""The closed-set twin of configs/fashion_mnist_open_set.py: the same recipe (2 epochs, a 50-step
warm-up) on all ten classes, scored on the test split (accuracy and retrieval).

python -m isx.main --config=configs/fashion_mnist_closed_set.py --workdir=workdirs/fmnist_closed_set
Tuning selects on a seeded 10% of the training examples (results/spaces/fashion_mnist_closed_set.json):
--config.dataset.validation_fraction=0.1 --config.dataset.eval_split=validation
"""
from ml_collections import config_dict

from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.num_epochs = 2
  c.warmup_steps = 50
  # accuracy's every_steps None: once per epoch (a placeholder: the command line can set it)
  c.evals = {'accuracy': {'every_steps': config_dict.placeholder(int)}, 'retrieval': {},
             'embedding_norm': {}}
  return default.variant(c, arg)
