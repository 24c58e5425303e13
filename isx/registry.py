"""Plug-ins by name: models, heads, losses, evals and datasets are modules, one file each.

A config names a plug-in either by its file in isx (`model.name='simplenet'` is
isx/models/simplenet.py) or by any importable module path (`model.name='my_lab.wide_net'`),
so a new one is one new file, here or in your own package, and no list to edit.
"""
import importlib
import pkgutil

_ONE = {'models': 'model', 'heads': 'head', 'losses': 'loss', 'evals': 'eval', 'datasets': 'dataset'}


def available(kind: str, attr: str) -> list[str]:
  """The plug-ins isx ships for kind ('models', 'heads', ...): its package's modules that
  define attr (a package also holds shared code, e.g. isx/models/common.py)."""
  package = importlib.import_module(f'isx.{kind}')
  names = (m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith('_'))
  return sorted(n for n in names if hasattr(importlib.import_module(f'isx.{kind}.{n}'), attr))


def load(kind: str, name: str, attr: str):
  """`attr` of the plug-in module `name` of kind; one line naming the choices if there is none."""
  path = name if '.' in name else f'isx.{kind}.{name}'
  what = f'{_ONE[kind]} {name!r}'
  try:
    module = importlib.import_module(path)
  except ModuleNotFoundError as e:
    if not (path == e.name or path.startswith(f'{e.name}.')):  # it imports a missing package
      raise
    raise ValueError(f'unknown {what}; choose one of {", ".join(available(kind, attr))}, or give an '
                     f'importable module path (my_package.my_{_ONE[kind]})') from None
  if not hasattr(module, attr):
    raise ValueError(f'{what} ({module.__file__}) defines no {attr}; see README, Extending isx')
  return getattr(module, attr)
