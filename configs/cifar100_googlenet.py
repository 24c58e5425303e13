"""GoogleNet + IS on CIFAR100 (paper Table 5: 60.44 with IS, 59.23 without).

python -m isx.main --config=configs/cifar100_googlenet.py --workdir=workdirs/cifar100_googlenet
Baseline, the same recipe without the IS layer:
python -m isx.main --config=configs/cifar100_googlenet.py:baseline --workdir=workdirs/cifar100_googlenet_baseline
"""
from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = 'cifar100'
  c.model = default.model('googlenet', embedding_dim=1024, stem='cifar', batch_norm=True,
                          dropout_rate=0.4)
  c.num_epochs = 100  # the paper gives no schedule; Adam at its lr 1e-2, warm-up + cosine (default)
  return default.variant(c, arg)
