"""LeNet + IS on URDU characters, 64x64 (paper Table 4: 71.54 with IS, 70.02 without).
Needs the manual download: see docs/data.md.

python -m isx.main --config=configs/urdu_lenet.py --workdir=workdirs/urdu_lenet
Baseline, the same recipe without the IS layer:
python -m isx.main --config=configs/urdu_lenet.py:baseline --workdir=workdirs/urdu_lenet_baseline
"""
from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = 'urdu_characters'
  c.model = default.model('lenet', embedding_dim=84)
  return default.variant(c, arg)
