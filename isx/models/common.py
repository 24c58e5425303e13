"""What every isx model shares: the config fields of the classifier, and the classifier itself,
features -> [IS] -> FC(embedding) -> PReLU -> head."""
import inspect
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from isx import layers
from isx.heads import softmax

XAVIER = nn.initializers.xavier_uniform()


class SharedFields(nn.Module):
  """The config.model fields every model takes (configs/default.model reads them from here)."""
  num_classes: int
  embedding_dim: int = 256
  inward_scale: bool = True
  xi: float = 100.0
  # config.model.head ({'name', **settings}) becomes, in isx.models.create_model, the factory
  # num_classes -> head module (isx.models.head_factory).
  head: Callable = softmax.Head
  dtype: Any = jnp.float32  # compute dtype (e.g. bfloat16); params stay float32


class EmbeddingClassifier(SharedFields):
  """Turns flat features into the contract outputs {'logits', 'embedding', 'features'} (the
  backbone's flattened features, before IS and the FC: what transfer studies also score), and in
  training
  (labels given) 'scores': the head's logits without its margin, which train accuracy reads.
  A head whose __call__ takes `step` gets the train step (for a margin that anneals).

  The IS layer sits right after the backbone's flattened features, as in the authors'
  SimpleNet code and the paper's Fig. 6; `embedding` is the PReLU output fed to the last FC.
  """

  @nn.compact
  def __call__(self, features, labels=None, step=None):
    x = features.reshape((features.shape[0], -1))
    if self.inward_scale:
      x = layers.InwardScale(self.xi, name='inward_scale')(x)
    x = nn.Dense(self.embedding_dim, kernel_init=XAVIER, dtype=self.dtype, name='fc_embedding')(x)
    # The head, the logits and so the loss in float32 whatever the compute dtype.
    embedding = layers.PReLU(name='prelu')(x).astype(jnp.float32)
    head = self.head(self.num_classes)
    progress = {'step': step} if 'step' in inspect.signature(type(head).__call__).parameters else {}
    outputs = {'logits': head(embedding, labels, **progress), 'embedding': embedding,
               'features': features.reshape((features.shape[0], -1)).astype(jnp.float32)}
    if labels is not None:  # training: a margin head's logits hold the margin; its scores do not
      outputs['scores'] = jax.lax.stop_gradient(head(embedding))
    return outputs


class EmbeddingModel(SharedFields):
  """Base of every model: the fields config.model shares, and `classify` to end the network.

  A model subclasses it, adds its own fields (each one a config.model field) and calls
  `self.classify(features, labels, step=step)` at the end of its compact
  `__call__(x, labels=None, train=False, step=None)`; step is the train step (None at eval).
  """

  def classify(self, features, labels, inward_scale=None, step=None):
    """{'logits', 'embedding', 'features'} from features; inward_scale=False when the model applied IS
    itself, earlier in the network (LeNet)."""
    return EmbeddingClassifier(
        self.num_classes, self.embedding_dim,
        self.inward_scale if inward_scale is None else inward_scale, self.xi, self.head,
        self.dtype, name='classifier')(features, labels, step)
