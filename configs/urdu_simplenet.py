"""SimpleNet + IS on URDU characters, 64x64 (paper Table 4: 77.76 with IS, 74.03 without).
Needs the manual download: see docs/data.md.

python -m isx.main --config=configs/urdu_simplenet.py --workdir=workdirs/urdu_simplenet
Baseline, the same recipe without the IS layer:
python -m isx.main --config=configs/urdu_simplenet.py:baseline --workdir=workdirs/urdu_simplenet_baseline

SimpleNet puts a ReLU after each conv, as the authors' code does (TF-slim's conv2d default);
the paper's text names none: add --config.model.conv_activation=none for that variant.
"""
from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = 'urdu_characters'
  return default.variant(c, arg)
