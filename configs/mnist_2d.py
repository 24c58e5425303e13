"""SimpleNet + IS on MNIST with a 2-D embedding, for the paper's feature figures (Fig. 2, 3).
Writes workdirs/mnist_2d/features.png.

python -m isx.main --config=configs/mnist_2d.py --workdir=workdirs/mnist_2d
Baseline without the inward-scale layer: add --config.model.inward_scale=False and
--config.warmup_steps=0 (the default warm-up helps IS but destabilises SimpleNet without IS at
lr 1e-2; RESULTS.md, "Warm-up over 5 epochs").
"""
from configs import default


def get_config():
  c = default.get_config()
  c.dataset.name = 'mnist'
  c.model.embedding_dim = 2
  return c
