"""Figures written as PNGs into the workdir: learning curves, retrieval examples, embedding norms
and the 2-D feature scatter."""

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from etils import epath  # noqa: E402

from isx import knn  # noqa: E402
from isx.metric_writers import read_jsonl  # noqa: E402
from isx.workdir import Workdir  # noqa: E402


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


def _save(fig, path):
  fig.tight_layout()
  with epath.Path(path).open('wb') as f:
    fig.savefig(f, dpi=100, format='png')
  plt.close(fig)


def retrieval_examples(embeddings, labels, read_images, path, queries=8, k=8, seed=0, title=''):
  """Rows of: a test query, then its k nearest other test examples (Euclidean, as Recall@K
  counts them), each framed green when of the query's class and red when not. Returns the
  queries, their neighbours and the same-class mask that the picture shows."""
  rng = np.random.default_rng(seed)
  q = np.sort(rng.choice(len(labels), min(queries, len(labels)), replace=False))
  ids = np.arange(len(labels))
  _, nn = knn.knn(embeddings[q], embeddings, min(k, len(labels) - 1), query_ids=q,
                        gallery_ids=ids)
  nn = np.asarray(nn)
  images = read_images(np.concatenate([q, nn.ravel()]))
  cmap = 'gray' if images.shape[-1] == 1 else None
  fig, axes = plt.subplots(len(q), nn.shape[1] + 1, figsize=(1.1 * (nn.shape[1] + 1), 1.1 * len(q)),
                           squeeze=False)
  for row, query in enumerate(q):
    for col in range(nn.shape[1] + 1):
      ax = axes[row, col]
      i = row if col == 0 else len(q) + row * nn.shape[1] + col - 1
      ax.imshow(images[i].squeeze(-1) if cmap else images[i], cmap=cmap)
      ax.set_xticks([]), ax.set_yticks([])
      if col == 0:
        ax.set_ylabel(f'{labels[query]}', rotation=0, labelpad=10)
        color = 'black'
      else:
        color = 'green' if labels[nn[row, col - 1]] == labels[query] else 'red'
      for spine in ax.spines.values():
        spine.set(color=color, linewidth=2.5)
  axes[0, 0].set_title('query', fontsize=8)
  axes[0, 1].set_title(f'{nn.shape[1]} nearest (green: same class){title}', fontsize=8,
                       loc='left')
  _save(fig, path)
  return q, nn, labels[nn] == labels[q][:, None]


def embedding_norms(named, path, title=''):
  """Histograms of the L2 norm of the embedding (the PReLU output fed to the last FC), one per
  run, e.g. {'with IS': ..., 'without IS': ...}: IS bounds what the FC after it can grow."""
  fig, ax = plt.subplots(figsize=(6, 3.5))
  ax.set_title(title, fontsize=8)
  # float64: a diverged run's finite float32 embeddings can have norms past float32's range.
  norms = {name: np.linalg.norm(np.asarray(e, np.float64), axis=1) for name, e in named.items()}
  every = np.concatenate(list(norms.values()))
  positive = every[(every > 0) & np.isfinite(every)]
  bins = (np.geomspace(positive.min(), positive.max(), 61) if positive.size and
          positive.max() > positive.min() else 60)
  for name, n in norms.items():
    shown = n[(n > 0) & np.isfinite(n)]  # a log axis has no place for 0
    left_out = f', {len(n) - len(shown)} at 0 not shown' if len(shown) < len(n) else ''
    ax.hist(shown, bins=bins, alpha=0.6,
            label=f'{name} (median {np.median(n):.3g}{left_out})')
  ax.set(xlabel='embedding L2 norm', ylabel='test examples', xscale='log')
  ax.legend(fontsize=8)
  _save(fig, path)


def _draw(path, draw, *args, **kwargs):
  """One picture; one that fails is a warning naming it and its error, never the run's end:
  the metrics it illustrates are already written."""
  try:
    draw(*args, path, **kwargs)
  except Exception as e:  # noqa: BLE001  any matplotlib failure on odd data
    plt.close('all')
    print(f'warning: could not draw {path} ({type(e).__name__}: {" ".join(str(e).split())[:200]})',
          flush=True)


def plot_workdir(workdir: str, read_images=None):
  """Writes learning_curves.png, embedding_norms.png, retrieval_examples.png (given
  read_images(indices) -> eval-split images) and features.png when the embedding is 2-D."""
  workdir = epath.Path(workdir)
  records = read_jsonl(workdir)
  if records:
    _draw(workdir / 'learning_curves.png', learning_curves, records)
  npz = Workdir(str(workdir)).embeddings
  if npz.exists():
    with npz.open('rb') as f:
      data = dict(np.load(f))
    # A diverged checkpoint's non-finite embeddings are left out, and each picture says so.
    finite = np.all(np.isfinite(data['embeddings']), axis=1)
    kept = np.flatnonzero(finite)
    embeddings, labels = data['embeddings'][kept], data['labels'][kept]
    note = (f' ({len(finite) - len(kept)} of {len(finite)} embeddings not finite, not shown)'
            if len(kept) < len(finite) else '')
    if len(kept):
      _draw(workdir / 'embedding_norms.png', embedding_norms, {workdir.name: embeddings},
            title=note.strip())
    if read_images is not None and len(labels) > 1:
      _draw(workdir / 'retrieval_examples.png', retrieval_examples, embeddings, labels,
            lambda i: read_images(kept[i]), title=note)
    if embeddings.shape[1] == 2 and len(kept):
      _draw(workdir / 'features.png', feature_scatter, embeddings, labels, title=note.strip())
