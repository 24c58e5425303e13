"""Models by name: config.model.name 'simplenet' is isx/models/simplenet.py's `Model`, or any
module path (`my_lab.wide_net`) whose `Model` subclasses isx.models.common.EmbeddingModel.

The rest of config.model goes to Model(num_classes=..., **fields) as keyword arguments, so a
config holds exactly the fields its model takes (configs/default.py: `default.model(...)`).
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp

from isx import errors, registry
from isx.layers import check_xi
from isx.models import input_shape


def load(name: str):
  return registry.load('models', name, 'Model')


def field_names(name: str) -> set[str]:
  """The config fields model `name` takes."""
  return {f.name for f in dataclasses.fields(load(name))} - {'num_classes', 'parent', 'name'}


def own_settings(name: str) -> dict:
  """The defaults of the fields model `name` adds to those every model shares (SharedFields)."""
  from isx.models.common import SharedFields
  shared = {f.name for f in dataclasses.fields(SharedFields)}
  return {k: v for k, v in registry.settings(load(name)).items() if k not in shared}


def defaults(model) -> dict:
  return own_settings(model['name'])


def resolve(model, info=None) -> dict:
  """config.model, less its head (a kind of its own), with the model's own fields filled in and
  checked; one line on a bad name, a field the model does not take, or a bad value."""
  del info
  name = model['name']
  given = {k: v for k, v in model.items() if k not in ('name', 'head')}
  unknown = sorted(set(given) - field_names(name))
  if unknown:
    raise errors.ConfigError(
        f'model {name!r} does not take model.{", model.".join(unknown)}; it takes '
        f'{", ".join(sorted(field_names(name)))} (start from a config made for it, or name it '
        f'after the config path: :model={name})')
  what, own = f'model {name!r} (config.model)', own_settings(name)
  settings = {k: v for k, v in registry.resolve(
      what, load(name), {k: v for k, v in given.items() if k in own}).items() if k in own}
  registry.check(what, load(name), settings)
  resolved = {'name': name, **given, **settings}
  if 'xi' in resolved:
    check_xi(resolved['xi'])
  try:  # the model's own checks of its fields (__post_init__)
    create_model({**resolved, 'head': {'name': 'softmax'}}, num_classes=2)
  except errors.UserError:
    raise
  except ValueError as e:
    raise errors.ConfigError(str(e)) from None
  return resolved


def head_factory(head):
  """num_classes -> the head module that a resolved config.model.head describes."""
  settings = dict(head)
  return functools.partial(registry.load('heads', settings.pop('name'), 'Head'), **settings)


def create_model(model_config, num_classes: int, image_shape=None):
  """Model(num_classes, **model_config without name), from a resolved config.model; given
  image_shape, checked to take such images (input_shape.check)."""
  kwargs = {k: v for k, v in model_config.items() if k != 'name'}
  if 'head' in kwargs:
    kwargs['head'] = head_factory(kwargs['head'])
  if 'dtype' in kwargs:
    kwargs['dtype'] = jnp.dtype(kwargs['dtype'])
  model = load(model_config['name'])(num_classes=num_classes, **kwargs)
  if image_shape is not None:
    input_shape.check(model, image_shape)
  return model


def parameter_overview(params) -> str:
  """A table: one row per parameter array (path, shape, count), then the total."""
  rows = [('/'.join(str(getattr(k, 'key', k)) for k in path), str(tuple(p.shape)), int(p.size))
          for path, p in jax.tree_util.tree_leaves_with_path(params)]
  rows.append(('total', '', sum(r[2] for r in rows)))
  width = max(len(r[0]) for r in rows)
  return '\n'.join(f'{p:<{width}}  {s:<20} {n:>12,}' for p, s, n in rows) + '\n'
