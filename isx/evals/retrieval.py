"""Recall@K and Precision@K for K in config.retrieval_ks, and MAP@R: exact Euclidean k-NN on the
embeddings, every test example a query against all the others (isx.retrieval)."""
from isx import retrieval


def compute(outputs, config) -> dict:
  return retrieval.retrieval_metrics(outputs['embedding'], outputs['label'],
                                     tuple(config.retrieval_ks), block_size=config.knn_block_size)
