"""Figures written as PNGs into the workdir: learning curves and the 2-D feature scatter."""

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from etils import epath  # noqa: E402

from isx.metric_writers import read_jsonl  # noqa: E402


def learning_curves(records, path):
  train = [r for r in records if 'train/loss' in r]
  test = [r for r in records if 'test/accuracy' in r]
  fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
  ax_loss.plot([r['step'] for r in train], [r['train/loss'] for r in train])
  ax_loss.set(xlabel='step', ylabel='train loss', yscale='log')
  ax_acc.plot([r['step'] for r in train], [r['train/accuracy'] for r in train], label='train')
  if test:
    ax_acc.plot([r['step'] for r in test], [r['test/accuracy'] for r in test], 'o-', label='test')
  ax_acc.set(xlabel='step', ylabel='accuracy')
  ax_acc.legend()
  fig.tight_layout()
  with epath.Path(path).open('wb') as f:
    fig.savefig(f, dpi=100, format='png')
  plt.close(fig)


def feature_scatter(embeddings, labels, path, title='', ax=None):
  """The paper's Fig. 2/3: 2-D embeddings of the test set coloured by class."""
  own = ax is None
  if own:
    fig, ax = plt.subplots(figsize=(5, 5))
  for c in np.unique(labels):
    pts = embeddings[labels == c]
    ax.scatter(pts[:, 0], pts[:, 1], s=1, label=str(c), rasterized=True)
  ax.set_title(title)
  ax.set_aspect('equal', adjustable='datalim')
  if own:
    ax.legend(markerscale=8, fontsize=7, loc='best')
    fig.tight_layout()
    with epath.Path(path).open('wb') as f:
      fig.savefig(f, dpi=100, format='png')
    plt.close(fig)


def plot_workdir(workdir: str):
  """Writes learning_curves.png, and features.png when the embedding is 2-D."""
  workdir = epath.Path(workdir)
  records = read_jsonl(workdir)
  if records:
    learning_curves(records, workdir / 'learning_curves.png')
  npz = workdir / 'eval' / 'embeddings.npz'
  if npz.exists():
    with npz.open('rb') as f:
      data = dict(np.load(f))
    if data['embeddings'].shape[1] == 2:
      feature_scatter(data['embeddings'], data['labels'], workdir / 'features.png')
