"""The embedding's L2 norms over the test split (median and 10th/90th percentiles): how far from
a sphere the features fed to the last FC lie, with IS and without."""
import numpy as np


def compute(outputs) -> dict:
  norms = np.linalg.norm(np.asarray(outputs['embedding'], np.float64), axis=-1)
  norms = norms[np.isfinite(norms)]  # evaluation.compute_metrics counts the others
  if not norms.size:
    return {}
  p10, median, p90 = np.percentile(norms, (10, 50, 90))
  return {'embedding_norm/median': float(median), 'embedding_norm/p10': float(p10),
          'embedding_norm/p90': float(p90)}


def summarize(metrics):
  keys = ('embedding_norm/median', 'embedding_norm/p10', 'embedding_norm/p90')
  if not all(k in metrics for k in keys):
    return '', set()
  median, p10, p90 = (metrics[k] for k in keys)
  return f'embedding norm {median:.3g} (p10-p90 {p10:.3g}-{p90:.3g})', set(keys)
