"""Losses by name: config.loss.name 'softmax+center' is the sum of the terms isx/losses/softmax.py
and isx/losses/center.py (or module paths: 'softmax+my_lab.spread'). Each term's settings sit
under its short name (the last part of its name): config.loss.center = {'weight': 0.01,
'alpha': 0.5}. `weight` is isx's, default the class attribute `Loss.weight` or 1; the others are
the keyword arguments with defaults of the term's `Loss(num_classes, embedding_dim, ...)`, and
its module may define `check(**settings)` to refuse values out of range (ValueError).

A term is an object with `__call__(outputs, labels, state) -> scalar` and, when it keeps state
between steps (center loss: the class centers), `init_state()` and `update_state(state, outputs,
labels)`. That state lives in TrainState.loss_state[<term>] and is checkpointed with the weights;
the train step names no loss.
"""
from isx import errors, registry


def load(term: str):
  return registry.load('losses', term, 'Loss')


def _terms(name: str) -> dict:
  """{short name: name} of the terms of loss.name."""
  return {term.rsplit('.', 1)[-1]: term for term in name.split('+')}


def _weight(cls) -> float:
  return float(getattr(cls, 'weight', 1.0))


def defaults(loss) -> dict:
  return {'name': loss['name'], **{short: {'weight': _weight(load(term)), **registry.settings(
      load(term))} for short, term in _terms(loss['name']).items()}}


def resolve(loss, info=None) -> dict:
  """config.loss with every term's settings filled in; one line on an unknown term or setting,
  or settings for a term that loss.name does not have."""
  del info
  terms = _terms(loss['name'])
  stray = sorted(set(loss) - {'name'} - set(terms))
  if stray:
    raise errors.ConfigError(
        f'loss.{", loss.".join(stray)} set, but loss.name {loss["name"]!r} has no '
        f'such term; add it to loss.name or remove the setting')
  resolved = {'name': loss['name']}
  for short, term in terms.items():
    cls, what = load(term), f'loss {term!r} (loss.{short})'
    settings = registry.resolve(what, cls, dict(loss.get(short, {})),
                                core={'weight': _weight(cls)})
    if not settings['weight'] >= 0:  # also refuses NaN
      raise errors.ConfigError(f'loss.{short}.weight must be >= 0, got {settings["weight"]!r}')
    registry.check(what, cls, {k: v for k, v in settings.items() if k != 'weight'})
    resolved[short] = settings
  if not any(resolved[short]['weight'] > 0 for short in terms):
    raise errors.ConfigError(
        f'every term of loss {loss["name"]!r} has weight 0, so nothing would train (the loss '
        f'and its gradient are 0 at every step); give a term a positive weight')
  return resolved


class Objective:
  """The weighted sum of the terms that config.loss (resolved) names."""

  def __init__(self, loss_config, num_classes: int, embedding_dim: int):
    self.terms, self.weights = {}, {}
    for short, term in _terms(loss_config['name']).items():
      cls, settings = load(term), dict(loss_config.get(short, {}))
      self.weights[short] = settings.pop('weight', _weight(cls))
      self.terms[short] = cls(num_classes, embedding_dim, **settings)

  def init_state(self) -> dict:
    return {t: term.init_state() for t, term in self.terms.items() if hasattr(term, 'init_state')}

  def __call__(self, outputs, labels, state):
    """(loss, {term: value})."""
    values = {t: term(outputs, labels, state.get(t)) for t, term in self.terms.items()}
    return sum(self.weights[t] * v for t, v in values.items()), values

  def update_state(self, state, outputs, labels) -> dict:
    return {t: self.terms[t].update_state(s, outputs, labels) for t, s in state.items()}
