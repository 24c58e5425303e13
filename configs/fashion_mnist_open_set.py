"""Open-set retrieval on FashionMNIST (Musgrave et al. 2020's protocol): SimpleNet + IS trained on
classes 0-4 (T-shirt, trouser, pullover, dress, coat), its embedding scored by retrieval on the
unseen classes 5-9 (sandal, shirt, sneaker, bag, ankle boot); accuracy is not computed there.
The recipe is the default one (configs/default.py) at 2 epochs (468 steps), its warm-up
shortened in proportion: 50 steps (the default's 200 would be 43% of the run).

python -m isx.main --config=configs/fashion_mnist_open_set.py --workdir=workdirs/fmnist_open_set
Tuning selects on classes 3-4 held out of training (results/spaces/fashion_mnist_open_set.json):
--config.dataset.validation_classes=2 --config.dataset.eval_split=validation
"""
from ml_collections import config_dict

from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.classes = '0-4'
  c.num_epochs = 2
  c.warmup_steps = 50
  # accuracy's every_steps None: once per epoch (a placeholder: the command line can set it)
  c.evals = {'accuracy': {'every_steps': config_dict.placeholder(int)}, 'retrieval': {},
             'embedding_norm': {}}
  return default.variant(c, arg)
