"""Metrics by name: config.evals = {'accuracy': {...}, 'retrieval': {'ks': (1, 5, 10)}, ...}. Each
key is a label; `type` names the eval, isx/evals/TYPE.py or a module path (default: the label,
so `'retrieval': {}` is isx/evals/retrieval.py). A module's `compute(outputs, **settings) ->
{name: float}` gets the whole eval split's numpy outputs: 'logits', 'embedding', 'label' and
'index' (dataset order); its keyword arguments with defaults are its settings. It may define
`check(info, **settings)`, raising ValueError for settings that cannot work on the dataset, and
`summarize(metrics) -> (text, keys)`: its part of the summary line printed after an evaluation,
and the metric keys that text shows (any metric no plug-in shows prints as `name value`).

`every_steps` is isx's setting for every eval: every eval runs at the end of training and in
isx.eval; one with every_steps N > 0 also runs every N train steps, None once per epoch, 0 never
in the loop. Values reach metrics.jsonl and TensorBoard (test/* in the loop, eval/* at the end)
and eval/metrics.json. Evals never change a model: a workdir may be evaluated with any.
"""
from isx import errors, registry

CORE = ('type', 'every_steps')  # isx's settings of every eval; the rest go to compute
OUTPUTS = ('logits', 'embedding')  # what every eval may read; a module's OUTPUTS adds to them


def load(name: str):
  return registry.load('evals', name, 'compute')


def defaults(evals) -> dict:
  return {label: {'type': given.get('type') or label, 'every_steps': 0,
                  **registry.settings(load(given.get('type') or label))}
          for label, given in evals.items()}


def resolve(evals, info=None) -> dict:
  """config.evals with every eval's settings filled in, checked (against the dataset too, given
  its info); one line on an unknown eval or setting."""
  if isinstance(evals, (list, tuple)):  # a config written before evals owned their settings
    raise errors.ConfigError(f'config.evals is a dict {{label: settings}}: write '
                             f'{ {name: {} for name in evals} }, or name them after the config path, '
                             f':evals={"+".join(evals)}')
  resolved = {}
  for label, given in evals.items():
    kind = given.get('type') or label
    compute_fn = load(kind)
    settings = registry.resolve(f'eval {kind!r} (evals.{label})', compute_fn, dict(given),
                                core={'type': kind, 'every_steps': 0})
    every = settings['every_steps']
    if every is not None and (type(every) is not int or every < 0):
      raise errors.ConfigError(
          f'evals.{label}.every_steps must be None (once per epoch), 0 (only at the '
          f'end) or a positive number of steps, got {every!r}')
    _check(compute_fn, info, settings)
    resolved[label] = settings
  return resolved


def check_data(evals, info):
  """Each eval's own check of its resolved settings against the dataset (info)."""
  for settings in evals.values():
    _check(load(settings['type']), info, settings)


def _check(compute_fn, info, settings):
  check = getattr(registry.module_of(compute_fn), 'check', None)
  if check is not None:
    try:
      check(info, **_own(settings))
    except errors.UserError:
      raise
    except ValueError as e:  # the contract: a check refuses with ValueError
      raise errors.ConfigError(str(e)) from None


def _own(settings) -> dict:
  return {k: v for k, v in settings.items() if k not in CORE}


def periods(evals, steps_per_epoch: int) -> dict:
  """{label: period in steps} of the evals of config.evals that also run in the loop."""
  out = {}
  for label, settings in evals.items():
    every = settings.get('every_steps', 0)
    if every != 0:
      out[label] = every or steps_per_epoch
  return out


def on_training_classes(settings) -> bool:
  """Whether the eval needs the scored classes to be the head's (its module's
  ON_TRAINING_CLASSES, e.g. accuracy): not run when held-out classes are scored."""
  module = registry.module_of(load(settings.get('type')))
  return bool(getattr(module, 'ON_TRAINING_CLASSES', False))


def summarize(metrics, evals) -> list:
  """The summary line's parts that evals' plug-ins make from metrics (each plug-in's
  summarize), then `name value` for any metric of metrics that none showed."""
  parts, shown = [], set()
  for label, settings in evals.items():
    summarize_fn = getattr(registry.module_of(load(settings.get('type') or label)), 'summarize',
                           None)
    if summarize_fn is not None:
      text, keys = summarize_fn(metrics)
      parts += [text] if text else []
      shown.update(keys)
  return parts + [f'{k} {v:.4g}' for k, v in sorted(metrics.items())
                  if k not in shown and isinstance(v, (int, float))]


def outputs(evals) -> tuple:
  """The model outputs that evals read: OUTPUTS, and those their modules' OUTPUTS add (e.g.
  feature_retrieval's 'features', gathered to the host only when an eval asks for them)."""
  extra = [k for label, settings in evals.items()
           for k in getattr(registry.module_of(load(settings.get('type') or label)), 'OUTPUTS', ())]
  return tuple(dict.fromkeys((*OUTPUTS, *extra)))


def compute(outputs, evals) -> dict:
  """The metrics of `evals` (config.evals, or part of it)."""
  metrics = {}
  for label, settings in evals.items():
    metrics.update(load(settings.get('type') or label)(outputs, **_own(dict(settings))))
  return metrics
