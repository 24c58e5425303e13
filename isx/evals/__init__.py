"""Metrics by name: each name in config.evals ('accuracy', 'retrieval', 'embedding_norm') is
isx/evals/NAME.py (or a module path). Each module's `compute(outputs, config) -> {name: float}`
gets the whole test split's numpy outputs: 'logits', 'embedding', 'label' and 'index' (dataset
order). The in-loop eval runs config.loop_evals, the final one and isx.eval run config.evals;
every value reaches metrics.jsonl and TensorBoard (test/* in the loop, eval/* at the end) and
eval/metrics.json."""
from isx import registry


def load(name: str):
  return registry.load('evals', name, 'compute')


def compute(outputs, names, config) -> dict:
  metrics = {}
  for name in names:
    metrics.update(load(name)(outputs, config))
  return metrics
