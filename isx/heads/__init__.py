"""Classifier heads by name: model.head 'arcface' is isx/heads/arcface.py's `Head`, or any
module path. Every head maps an embedding [N, D] (and, when training, the labels) to logits
[N, C]; `Head(num_classes, scale=..., margin=...)` gets model.head_scale / head_margin only
when the config sets them (None keeps the head's own default)."""
from isx import registry


def load(name: str):
  return registry.load('heads', name, 'Head')


def _options(scale, margin) -> dict:
  return {k: v for k, v in (('scale', scale), ('margin', margin)) if v is not None}


def check(name: str, scale=None, margin=None):
  """One line when the head does not exist or does not take the options the config sets."""
  try:
    load(name)(2, **_options(scale, margin))
  except TypeError:
    given = ', '.join(f'model.head_{k}' for k in _options(scale, margin))
    raise ValueError(f'head {name!r} does not take {given}; leave it unset (None)') from None


def create(name: str, num_classes: int, scale=None, margin=None):
  return load(name)(num_classes, **_options(scale, margin))
