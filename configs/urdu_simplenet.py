"""SimpleNet + IS on URDU characters, 64x64 (paper Table 4: 77.76 with IS, 74.03 without).
Needs the manual download: see README, Data.

python -m isx.main --config=configs/urdu_simplenet.py --workdir=workdirs/urdu_simplenet
Baseline without the inward-scale layer: add --config.model.inward_scale=False and
--config.warmup_steps=0 (the default warm-up helps IS but destabilises SimpleNet without IS at
lr 1e-2; RESULTS.md, "Warm-up over 5 epochs").
"""
from configs import default


def get_config():
  c = default.get_config()
  c.dataset.name = 'urdu_characters'
  return c
