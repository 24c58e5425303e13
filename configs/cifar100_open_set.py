"""Open-set retrieval on CIFAR100 (Musgrave et al. 2020's protocol): SimpleNet + IS trained on
the first 50 classes, its embedding scored by retrieval on the unseen last 50 (isx.class_split;
accuracy is not computed there).

python -m isx.main --config=configs/cifar100_open_set.py --workdir=workdirs/cifar100_open_set
Baseline, the same recipe without the IS layer:
python -m isx.main --config=configs/cifar100_open_set.py:baseline --workdir=workdirs/cifar100_open_set_baseline
Selection on a class-disjoint validation split of the training classes (the last 10 of them):
--config.dataset.validation_classes=10 --config.dataset.eval_split=validation
"""
from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = 'cifar100'
  c.dataset.classes = 'first_half'
  return default.variant(c, arg)
