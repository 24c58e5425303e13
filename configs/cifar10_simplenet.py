"""SimpleNet + IS on CIFAR10 (paper Table 3: 64.0 with IS, 58.2 without).

python -m isx.main --config=configs/cifar10_simplenet.py --workdir=workdirs/cifar10_simplenet
Baseline, the same recipe without the IS layer:
python -m isx.main --config=configs/cifar10_simplenet.py:baseline --workdir=workdirs/cifar10_simplenet_baseline

SimpleNet puts a ReLU after each conv, as the authors' code does (TF-slim's conv2d default);
the paper's text names none: add --config.model.conv_activation=none for that variant.
"""
from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = 'cifar10'
  return default.variant(c, arg)
