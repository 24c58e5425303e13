"""SimpleNet + IS on CIFAR10 (paper Table 3: 64.0 with IS, 58.2 without).

python -m isx.main --config=configs/cifar10_simplenet.py --workdir=workdirs/cifar10_simplenet
Baseline without the inward-scale layer: add --config.model.inward_scale=False and
--config.warmup_steps=0 (the default warm-up helps IS but destabilises SimpleNet without IS at
lr 1e-2; RESULTS.md, "Warm-up over 5 epochs").
"""
from configs import default


def get_config():
  c = default.get_config()
  c.dataset.name = 'cifar10'
  return c
