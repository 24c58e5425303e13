"""GoogleNet + IS on ImageNet (ILSVRC-2012, 224x224), the paper's proof-of-concept run.
Needs TFDS's manual download of imagenet2012.

python -m isx.main --config=configs/imagenet_googlenet.py --workdir=workdirs/imagenet_googlenet
Baseline without the inward-scale layer: add --config.model.inward_scale=False
"""
from configs import default


def get_config():
  c = default.get_config()
  c.dataset.name = 'imagenet2012'
  c.dataset.shuffle_buffer = 16_384
  c.model.name = 'googlenet'
  c.model.stem = 'imagenet'
  c.model.embedding_dim = 1024
  c.batch_size = 256
  c.eval_batch_size = 500
  c.num_epochs = 90
  c.learning_rate = 1e-3
  c.lr_schedule = 'cosine'
  c.warmup_steps = 5000
  c.checkpoint_every_steps = 5000
  c.log_every_steps = 200
  c.eval_every_steps = 25_000
  c.retrieval_ks = (1, 5, 10)
  return c
