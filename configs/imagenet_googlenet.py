"""GoogleNet + IS on ImageNet (ILSVRC-2012, 224x224), the paper's proof-of-concept run.
Needs TFDS's manual download of imagenet2012.

python -m isx.main --config=configs/imagenet_googlenet.py --workdir=workdirs/imagenet_googlenet
Baseline, the same recipe without the IS layer:
python -m isx.main --config=configs/imagenet_googlenet.py:baseline --workdir=workdirs/imagenet_googlenet_baseline
"""
from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = 'imagenet2012'
  c.dataset.device_resident = False  # streamed: read and decoded by Grain threads
  c.dataset.num_workers = 16
  c.model = default.model('googlenet', embedding_dim=1024, stem='imagenet', batch_norm=True,
                          dropout_rate=0.4)
  c.batch_size = 256
  c.eval_batch_size = 500
  c.num_epochs = 90
  c.learning_rate = 1e-3
  c.lr_schedule = 'cosine'
  c.warmup_steps = 5000
  c.checkpoint_every_steps = 5000
  c.log_every_steps = 200
  c.evals.accuracy.every_steps = 25_000
  return default.variant(c, arg)
