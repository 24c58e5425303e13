"""The part every isx model shares: features -> [IS] -> FC(embedding) -> PReLU -> head."""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from isx import layers

XAVIER = nn.initializers.xavier_uniform()


class EmbeddingClassifier(nn.Module):
  """Turns flat features into the contract outputs {'logits', 'embedding'}.

  The IS layer sits right after the backbone's flattened features, as in the authors'
  SimpleNet code and the paper's Fig. 6; `embedding` is the PReLU output fed to the last FC.
  """
  num_classes: int
  embedding_dim: int
  inward_scale: bool = True
  xi: float = 100.0
  head: str = 'softmax'
  head_scale: float = 0.0  # 0 = the head's own default
  head_margin: float = -1.0  # < 0 = the head's own default
  dtype: Any = jnp.float32  # compute dtype of the embedding FC; params stay float32

  @nn.compact
  def __call__(self, features, labels=None):
    x = features.reshape((features.shape[0], -1))
    if self.inward_scale:
      x = layers.InwardScale(self.xi, name='inward_scale')(x)
    x = nn.Dense(self.embedding_dim, kernel_init=XAVIER, dtype=self.dtype, name='fc_embedding')(x)
    # The head, the logits and so the loss in float32 whatever the compute dtype.
    embedding = layers.PReLU(name='prelu')(x).astype(jnp.float32)
    head = layers.make_head(self.head, self.num_classes, scale=self.head_scale or None,
                            margin=None if self.head_margin < 0 else self.head_margin)
    return {'logits': head(embedding, labels), 'embedding': embedding}
