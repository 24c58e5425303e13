"""FashionMNIST retrieval: SimpleNet + IS trained with softmax + contrastive loss (Hadsell),
scored by Euclidean k-NN (paper Table 6: R@1/5/10 88.75/95.88/97.33 with IS, 86.75/95.63/97.22 without).

python -m isx.main --config=configs/fashion_mnist_retrieval.py --workdir=workdirs/fashion_mnist_retrieval
Baseline, the same recipe without the IS layer:
python -m isx.main --config=configs/fashion_mnist_retrieval.py:baseline --workdir=workdirs/fashion_mnist_retrieval_baseline

SimpleNet puts a ReLU after each conv, as the authors' code does (TF-slim's conv2d default);
the paper's text names none: add --config.model.conv_activation=none for that variant.
"""
from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = 'fashion_mnist'
  c.loss.name = 'softmax+contrastive'  # its margin and weight: the term's defaults, 1 and 1
  return default.variant(c, arg)
