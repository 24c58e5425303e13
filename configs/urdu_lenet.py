"""LeNet + IS on URDU characters, 64x64 (paper Table 4: 71.54 with IS, 70.02 without).
Needs the manual download: see README, Data.

python -m isx.main --config=configs/urdu_lenet.py --workdir=workdirs/urdu_lenet
Baseline without the inward-scale layer: add --config.model.inward_scale=False
"""
from configs import default


def get_config():
  c = default.get_config()
  c.dataset.name = 'urdu_characters'
  c.model.name = 'lenet'
  c.model.embedding_dim = 84
  return c
