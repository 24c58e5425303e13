"""Recall@K and Precision@K for K in evals.retrieval.ks, and MAP@R: exact Euclidean k-NN on the
embeddings, every test example a query against all the others (isx.knn), in blocks of
block_size queries; on hosts where it is faster (AMX), the exact search of isx.knn_exact."""
from isx import knn, knn_exact


def compute(outputs, ks: tuple = (1, 5, 10), block_size: int = 1024) -> dict:
  return knn.retrieval_metrics(outputs['embedding'], outputs['label'], tuple(ks),
                               block_size=block_size, search=knn_exact.chosen_search())


def summarize(metrics):
  """'Recall@1/5/10 90.51/97.12/98.28 | Precision@1/5/10 ... | MAP@R 81.63'."""
  parts, shown = [], set()
  for name in ('recall', 'precision'):
    keys = sorted((k for k in metrics if k.startswith(f'{name}@')), key=lambda k: int(k.split('@')[1]))
    if keys:
      parts.append(f'{name.title()}@{"/".join(k.split("@")[1] for k in keys)} '
                   f'{"/".join(f"{100 * metrics[k]:.2f}" for k in keys)}')
      shown.update(keys)
  if 'map@r' in metrics:
    parts.append(f'MAP@R {100 * metrics["map@r"]:.2f}')
    shown.add('map@r')
  return ' | '.join(parts), shown


def check(info, ks, block_size, what='evals.retrieval'):
  if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in ks):
    raise ValueError(f'{what}.ks must be positive integers, got {tuple(ks)!r}')
  if block_size < 1:
    raise ValueError(f'{what}.block_size must be positive, got {block_size!r}')
  if info is not None and max(ks) >= info.num_eval:
    raise ValueError(f'{what}.ks {tuple(ks)} asks for more neighbours than the '
                     f'{info.num_eval - 1} other examples of the eval split; use smaller ones')
