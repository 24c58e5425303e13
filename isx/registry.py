"""Plug-ins by name: models, heads, losses, evals and datasets are modules, one file each.

A config names a plug-in either by its file in isx (`model.name='simplenet'` is
isx/models/simplenet.py) or by any importable module path (`model.name='my_lab.wide_net'`),
so a new one is one new file, here or in your own package, and no list to edit. Every kind
reads a plug-in's settings the same way: the keyword arguments with defaults of what its module
defines (a flax module's fields are its constructor's). KINDS says, for each kind, where a
config holds its plug-ins; its package's `defaults(node)` fills them in (the config files) and
`resolve(node, info)` checks them (config_checks.validate, once per run).
"""
import dataclasses
import importlib
import inspect
import pkgutil
import sys

from isx import errors

_FLAX_FIELDS = ('parent', 'name')  # every flax Module's, not a setting


@dataclasses.dataclass(frozen=True)
class Kind:
  package: str  # isx/<package>/NAME.py, and the package's defaults() and resolve()
  attr: str  # what a plug-in module of the kind defines
  one: str  # one plug-in of the kind, in messages
  path: str  # where a config holds its plug-in(s) and their settings


KINDS = {k.package: k for k in (
    Kind('datasets', 'prepare', 'dataset', 'dataset'),
    Kind('models', 'Model', 'model', 'model'),
    Kind('heads', 'Head', 'head', 'model.head'),
    Kind('losses', 'Loss', 'loss', 'loss'),
    Kind('evals', 'compute', 'eval', 'evals'),
)}


def available(kind: str, attr: str) -> list[str]:
  """The plug-ins isx ships for kind ('models', 'heads', ...): its package's modules that
  define attr (a package also holds shared code, e.g. isx/models/common.py)."""
  package = importlib.import_module(f'isx.{kind}')
  names = (m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith('_'))
  return sorted(n for n in names if hasattr(importlib.import_module(f'isx.{kind}.{n}'), attr))


def load(kind: str, name: str, attr: str):
  """`attr` of the plug-in module `name` of kind; one line naming the choices if there is none."""
  path = name if '.' in name else f'isx.{kind}.{name}'
  what = f'{KINDS[kind].one} {name!r}'
  try:
    module = importlib.import_module(path)
  except ModuleNotFoundError as e:
    if not (path == e.name or path.startswith(f'{e.name}.')):  # it imports a missing package
      raise
    raise errors.ConfigError(
        f'unknown {what}; choose one of {", ".join(available(kind, attr))}, or give an '
        f'importable module path (my_package.my_{KINDS[kind].one})') from None
  if not hasattr(module, attr):
    raise errors.ConfigError(f'{what} ({module.__file__}) defines no {attr}; see docs/extending.md')
  return getattr(module, attr)


def module_of(target):
  """The module that defines a plug-in's class or function."""
  return sys.modules[target.__module__]


def settings(target) -> dict:
  """A plug-in's own settings and their defaults: the keyword arguments of target (its class or
  function) that have a default. Those without one (num_classes, outputs) are what isx passes."""
  return {p.name: p.default for p in inspect.signature(target).parameters.values()
          if p.default is not p.empty and p.name not in _FLAX_FIELDS}


def resolve(what: str, target, given, core: dict | None = None) -> dict:
  """The settings of a plug-in as config holds them: `given` over its defaults (and over `core`,
  the settings isx itself reads for every plug-in of the kind, e.g. a loss term's weight), each
  checked against its default's type. One line naming what it takes when a name is unknown."""
  defaults = {**(core or {}), **settings(target)}
  unknown = sorted(set(given) - set(defaults))
  if unknown:
    takes = ', '.join(sorted(defaults)) or 'no settings'
    raise errors.ConfigError(f'{what} does not take {", ".join(unknown)}; it takes {takes}')
  return {k: _typed(what, k, given[k], d, nullable=k in (core or {})) if k in given else d
          for k, d in defaults.items()}


def check(what: str, target, settings: dict):
  """The plug-in module's own range checks, if it defines `check(**settings)` (ValueError for a
  value out of range): one line naming the plug-in and where its settings are."""
  checker = getattr(module_of(target), 'check', None)
  if checker is not None:
    try:
      checker(**settings)
    except ValueError as e:  # the contract: a check refuses with ValueError
      raise errors.ConfigError(f'{what}: {e}') from None


def _typed(what, key, value, default, nullable=False):
  """value in the type of default: an int for a float, a list for a tuple (as JSON holds it).
  None only where the default is None, or for isx's own settings (an eval's every_steps)."""
  if default is None or (value is None and nullable):
    return value
  if isinstance(default, tuple) and isinstance(value, list):
    value = tuple(value)
  if isinstance(default, float) and type(value) is int:
    value = float(value)
  if type(value) is not type(default):
    raise errors.ConfigError(f'{what}: {key} must be a {type(default).__name__} like its default '
                             f'{default!r}, got {value!r}')
  return value
