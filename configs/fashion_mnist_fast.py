"""SimpleNet + IS on FashionMNIST, the recipe tuned for wall-clock time to 93% test accuracy.

The model is the paper's (SimpleNet, IS with xi 100); only the training differs from
configs/fashion_mnist_simplenet.py (20 epochs): 2 epochs, a 50-step warm-up into the cosine
decay, accuracy scored in the loop every half epoch (the time-to-accuracy curve), no plots and no
retrieval at the end (add them with :evals=accuracy+retrieval+embedding_norm,
--config.plots=True). RESULTS.md, "Time to accuracy", has what it measured.

python -m isx.main --config=configs/fashion_mnist_fast.py --workdir=workdirs/fmnist_fast
Baseline, the same recipe without the IS layer:
python -m isx.main --config=configs/fashion_mnist_fast.py:baseline --workdir=workdirs/fmnist_fast_baseline
"""
from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = 'fashion_mnist'
  c.num_epochs = 2
  c.warmup_steps = 50
  c.evals = {'accuracy': {'every_steps': 235}, 'embedding_norm': {}}
  c.plots = False
  return default.variant(c, arg)
