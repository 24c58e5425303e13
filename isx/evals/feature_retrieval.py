"""Recall@K, Precision@K and MAP@R, as retrieval gives them, on the backbone's flattened features
(before IS and the FC) instead of the embedding: transfer to unseen classes is often better
from the features before the last projection, so a study scores both
(`:evals=accuracy+retrieval+feature_retrieval`). Keys: features/recall@1, ..."""
from isx.evals import retrieval

PREFIX = 'features/'
OUTPUTS = ('features',)  # the outputs it reads besides logits and embeddings


def compute(outputs, ks: tuple = (1, 5, 10), block_size: int = 1024) -> dict:
  metrics = retrieval.compute({**outputs, 'embedding': outputs['features']}, ks, block_size)
  return {PREFIX + k: v for k, v in metrics.items()}


def summarize(metrics):
  own = {k[len(PREFIX):]: v for k, v in metrics.items() if k.startswith(PREFIX)}
  text, keys = retrieval.summarize(own)
  labelled = ' | '.join(f'features {part}' for part in text.split(' | ')) if text else ''
  return labelled, {PREFIX + k for k in keys}


def check(info, ks, block_size):
  retrieval.check(info, ks, block_size, what='evals.feature_retrieval')
