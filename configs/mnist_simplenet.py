"""SimpleNet + IS on MNIST (paper Table 2: 99.33 with IS, 98.40 without).

python -m isx.main --config=configs/mnist_simplenet.py --workdir=workdirs/mnist_simplenet
Baseline, the same recipe without the IS layer:
python -m isx.main --config=configs/mnist_simplenet.py:baseline --workdir=workdirs/mnist_simplenet_baseline

SimpleNet puts a ReLU after each conv, as the authors' code does (TF-slim's conv2d default);
the paper's text names none: add --config.model.conv_activation=none for that variant.
"""
from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = 'mnist'
  return default.variant(c, arg)
