"""SimpleNet + IS on MNIST with a 2-D embedding, for the paper's feature figures (Fig. 2, 3).
Writes workdirs/mnist_2d/features.png.

python -m isx.main --config=configs/mnist_2d.py --workdir=workdirs/mnist_2d
Baseline, the same recipe without the IS layer:
python -m isx.main --config=configs/mnist_2d.py:baseline --workdir=workdirs/mnist_2d_baseline

SimpleNet puts a ReLU after each conv, as the authors' code does (TF-slim's conv2d default);
the paper's text names none: add --config.model.conv_activation=none for that variant.
"""
from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = 'mnist'
  c.model.embedding_dim = 2
  return default.variant(c, arg)
