"""Losses by name: loss.name 'softmax+center' is the sum of the terms isx/losses/softmax.py and
isx/losses/center.py (or module paths: 'softmax+my_lab.spread'), each weighted by
loss.<term>_weight (default 1), <term> being the last part of its name.

A term's module defines `Loss(loss_config, num_classes, embedding_dim)`, an object with
`__call__(outputs, labels, state, mask) -> scalar` and, when the term keeps state between
steps (center loss: the class centers), `init_state()` and `update_state(state, outputs, labels,
mask)`. That state lives in TrainState.loss_state[<term>] and is checkpointed with the weights;
the train step names no loss.
"""
import jax.numpy as jnp

from isx import registry


def load(term: str):
  return registry.load('losses', term, 'Loss')


def mask_or_ones(mask, n):
  """[N] float weights: 1 for a real example, 0 for padding."""
  return jnp.ones((n,), jnp.float32) if mask is None else mask.astype(jnp.float32)


def masked_mean(per_example, w):
  return jnp.sum(per_example * w) / jnp.maximum(jnp.sum(w), 1.0)


class Objective:
  """The weighted sum of the terms that loss_config.name names."""

  def __init__(self, loss_config, num_classes: int, embedding_dim: int):
    names = {name.rsplit('.', 1)[-1]: name for name in loss_config.name.split('+')}
    self.terms = {t: load(n)(loss_config, num_classes, embedding_dim) for t, n in names.items()}
    self.weights = {t: float(loss_config.get(f'{t}_weight', 1.0)) for t in names}

  def init_state(self) -> dict:
    return {t: term.init_state() for t, term in self.terms.items() if hasattr(term, 'init_state')}

  def __call__(self, outputs, labels, state, mask=None):
    """(loss, {term: value})."""
    values = {t: term(outputs, labels, state.get(t), mask) for t, term in self.terms.items()}
    return sum(self.weights[t] * v for t, v in values.items()), values

  def update_state(self, state, outputs, labels, mask=None) -> dict:
    return {t: self.terms[t].update_state(s, outputs, labels, mask) for t, s in state.items()}
