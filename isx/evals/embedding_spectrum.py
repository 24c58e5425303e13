"""How many directions the embedding spreads the scored examples over: the eigenvalues of its
covariance. `participation_ratio` = (sum l)^2 / sum l^2, 1 when one direction holds all the
variance and D when D directions hold equal shares; `topK_share`: the share of the variance in
the K largest. A classifier of C classes can collapse its embedding onto the C - 1 directions
of its class means; on classes it never trained on, that leaves those directions, and little
else, to tell them apart (RESULTS.md, the open-set study)."""
import numpy as np


def compute(outputs, top=(2, 4, 9)) -> dict:
  x = np.asarray(outputs['embedding'], np.float64)
  x = x[np.all(np.isfinite(x), axis=-1)]  # evaluation.compute_metrics counts the others
  if len(x) < 2:
    return {}
  x = x - x.mean(0)
  eig = np.clip(np.linalg.eigvalsh(x.T @ x / (len(x) - 1)), 0, None)[::-1]
  total = float(eig.sum())
  if total == 0:  # every example at one point
    return {'embedding_spectrum/participation_ratio': 0.0}
  return {'embedding_spectrum/participation_ratio': total ** 2 / float(np.sum(eig ** 2)),
          **{f'embedding_spectrum/top{k}_share': float(eig[:k].sum()) / total for k in top}}


def summarize(metrics):
  prefix = 'embedding_spectrum/'
  keys = {k for k in metrics if k.startswith(prefix)}
  if f'{prefix}participation_ratio' not in keys:
    return '', keys
  shares = sorted((k for k in keys if k.startswith(f'{prefix}top')),
                  key=lambda k: int(k[len(prefix) + 3:-len('_share')]))
  text = f'participation ratio {metrics[f"{prefix}participation_ratio"]:.3g}'
  if shares:
    text += (f', top-{"/".join(k[len(prefix) + 3:-len("_share")] for k in shares)} share '
             f'{"/".join(f"{100 * metrics[k]:.1f}" for k in shares)}%')
  return text, keys


def check(info, top=(2, 4, 9)):
  del info
  if not top or any(type(k) is not int or k < 1 for k in top):
    raise ValueError(f'evals.embedding_spectrum.top must be positive ints, e.g. (2, 4, 9); got '
                     f'{top!r}')
