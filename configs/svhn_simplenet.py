"""SimpleNet + IS on SVHN (paper Table 3: 95.05 with IS, 93.20 without).

python -m isx.main --config=configs/svhn_simplenet.py --workdir=workdirs/svhn_simplenet
Baseline, the same recipe without the IS layer:
python -m isx.main --config=configs/svhn_simplenet.py:baseline --workdir=workdirs/svhn_simplenet_baseline

SimpleNet puts a ReLU after each conv, as the authors' code does (TF-slim's conv2d default);
the paper's text names none: add --config.model.conv_activation=none for that variant.
"""
from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = 'svhn_cropped'
  return default.variant(c, arg)
