"""FashionMNIST retrieval: SimpleNet + IS trained with softmax + contrastive loss (Hadsell),
scored by Euclidean k-NN (paper Table 6: R@1/5/10 88.75/95.88/97.33 with IS, 86.75/95.63/97.22 without).

python -m isx.main --config=configs/fashion_mnist_retrieval.py --workdir=workdirs/fashion_mnist_retrieval
Baseline without the inward-scale layer: add --config.model.inward_scale=False and
--config.warmup_steps=0 (the default warm-up helps IS but destabilises SimpleNet without IS at
lr 1e-2; RESULTS.md, "Warm-up over 5 epochs").
"""
from configs import default


def get_config():
  c = default.get_config()
  c.dataset.name = 'fashion_mnist'
  c.loss.name = 'softmax+contrastive'
  c.loss.margin = 1.0
  c.loss.contrastive_weight = 1.0
  return c
