"""Classifier heads by name: config.model.head = {'name': 'arcface', 'scale': 30.0, ...} is
isx/heads/arcface.py's `Head` (or any module path's) with those settings. `Head(num_classes,
**settings)` maps an embedding [N, D] (and, when training, the labels) to logits [N, C]; its
keyword arguments with defaults are its settings (isx.registry.settings), and its module may
define `check(**settings)` to refuse values out of range (ValueError). A new head with a
setting of its own is one file: `--config.model.head.name=my_lab.head --config.model.head.width=3`.
"""
from isx import errors, registry


def load(name: str):
  return registry.load('heads', name, 'Head')


def defaults(head) -> dict:
  return {'name': head['name'], **registry.settings(load(head['name']))}


def resolve(head, info=None) -> dict:
  """config.model.head with the head's defaults filled in; one line on an unknown name or
  setting, or a value of the wrong type or out of range."""
  del info
  if isinstance(head, str):  # a config written before heads owned their settings
    raise errors.ConfigError(f"model.head is a dict of the head's name and settings: write "
                             f"{{'name': {head!r}}}, or name it after the config path, :head={head}")
  name = head['name']
  given = {k: v for k, v in head.items() if k != 'name'}
  what, target = f'head {name!r} (model.head)', load(name)
  settings = registry.resolve(what, target, given)
  registry.check(what, target, settings)
  return {'name': name, **settings}
