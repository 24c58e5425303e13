"""SimpleNet + IS on MNIST (paper Table 2: 99.33 with IS, 98.40 without).

python -m isx.main --config=configs/mnist_simplenet.py --workdir=workdirs/mnist_simplenet
Baseline without the inward-scale layer: add --config.model.inward_scale=False and
--config.warmup_steps=0 (the default warm-up helps IS but destabilises SimpleNet without IS at
lr 1e-2; RESULTS.md, "Warm-up over 5 epochs").
"""
from configs import default


def get_config():
  c = default.get_config()
  c.dataset.name = 'mnist'
  return c
