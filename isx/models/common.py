"""What every isx model shares: the config fields of the classifier, and the classifier itself,
features -> [IS] -> FC(embedding) -> PReLU -> head."""
from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from isx import heads, layers

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
  head_scale: Optional[float] = None  # None: the head's own default
  head_margin: Optional[float] = None
  dtype: Any = jnp.float32  # compute dtype of the embedding FC; params stay float32

  @nn.compact
  def __call__(self, features, labels=None):
    x = features.reshape((features.shape[0], -1))
    if self.inward_scale:
      x = layers.InwardScale(self.xi, name='inward_scale')(x)
    x = nn.Dense(self.embedding_dim, kernel_init=XAVIER, dtype=self.dtype, name='fc_embedding')(x)
    # The head, the logits and so the loss in float32 whatever the compute dtype.
    embedding = layers.PReLU(name='prelu')(x).astype(jnp.float32)
    head = heads.create(self.head, self.num_classes, scale=self.head_scale, margin=self.head_margin)
    return {'logits': head(embedding, labels), 'embedding': embedding}


class EmbeddingModel(nn.Module):
  """Base of every model: the fields config.model shares, and `classify` to end the network.

  A model subclasses it, adds its own fields (each one a config.model field) and calls
  `self.classify(features, labels)` at the end of its compact `__call__(x, labels, train)`.
  """
  num_classes: int
  embedding_dim: int = 256
  inward_scale: bool = True
  xi: float = 100.0
  head: str = 'softmax'  # a module in isx/heads, or a module path
  head_scale: Optional[float] = None  # None: the head's own default (alpha / s)
  head_margin: Optional[float] = None  # None: the head's own default (cosface 0.35, arcface 0.5)
  dtype: Any = jnp.float32  # compute dtype (e.g. bfloat16); params stay float32

  def classify(self, features, labels, inward_scale=None):
    """{'logits', 'embedding'} from features; inward_scale=False when the model applied IS
    itself, earlier in the network (LeNet)."""
    return EmbeddingClassifier(
        self.num_classes, self.embedding_dim,
        self.inward_scale if inward_scale is None else inward_scale, self.xi, self.head,
        self.head_scale, self.head_margin, self.dtype, name='classifier')(features, labels)
