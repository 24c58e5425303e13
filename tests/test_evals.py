"""The metric plug-ins in isx/evals that isx/retrieval's tests do not cover."""
import numpy as np
import pytest

from isx import evals


def test_embedding_norm_percentiles():
  embedding = np.zeros((11, 2), np.float32)
  embedding[:, 0] = np.arange(11)  # norms 0, 1, ..., 10
  metrics = evals.load('embedding_norm')({'embedding': embedding}, None)
  assert metrics == pytest.approx({'embedding_norm/median': 5.0, 'embedding_norm/p10': 1.0,
                                   'embedding_norm/p90': 9.0})
