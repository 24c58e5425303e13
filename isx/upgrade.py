"""Everything isx does for workdirs written by an older isx, in one place: each change says
which form it upgrades (by the commit that introduced the new one). A config.json is upgraded
in memory when it is read (isx.config_checks); a checkpoint when it is restored
(isx.checkpointing). Nothing on disk is rewritten.
"""
import json

import jax

from isx import models

# Core config fields added since the first saved configs, with the value older runs trained with
# (d9ede46 and 71ac93c, 2026-11-28; the dataset's class split, 2026-12-02; test-time flip,
# 2026-12-03).
ADDED_SINCE = {'steps_per_dispatch': 1, 'model.dtype': 'float32', 'profile_steps': [],
               # isx.class_split (2026-12-02): every earlier run trained on all classes
               'dataset.classes': 'all', 'dataset.validation_classes': 0,
               'dataset.validation_fraction': 0.0, 'dataset.validation_fold': 0,  # 2026-12-07
               'dataset.test_time_flip': False, 'ema_decay': 0.0}  # 2026-12-03
# Plug-in settings added since, per loss term, with the value older runs trained with.
TERM_SETTINGS_ADDED_SINCE = {'softmax': {'label_smoothing': 0.0}}  # 2026-12-03


def config(saved: dict) -> dict:
  """A config.json's dict in today's form (not yet resolved): the core fields added since, with
  the values those runs used; num_train_steps -1, once 'from num_epochs', as None; the flat
  plug-in fields of before the plug-ins owned their settings (model.head_scale, loss.margin,
  loss.center_alpha, retrieval_ks, loop_evals, ...) moved into the plug-ins' own settings; and
  without the model fields that every model once carried but this model does not take."""
  saved = json.loads(json.dumps(saved))
  for key, value in ADDED_SINCE.items():
    *parents, leaf = key.split('.')
    node = saved
    for part in parents:
      node = node[part]
    node.setdefault(leaf, value)
  if saved.get('num_train_steps') == -1:
    saved['num_train_steps'] = None
  model = saved['model']
  model['head'] = _head(model)
  saved['loss'] = _loss(saved['loss'])
  if not isinstance(saved.get('evals'), dict):
    saved['evals'] = _evals(saved)
  takes = models.field_names(model['name'])
  for field in [f for f in model if f != 'name' and f not in takes]:
    model.pop(field)
  return saved


def _head(model: dict) -> dict:
  """Configs before 80a012c (2026-12-02): model.head as {'name', **settings} from the flat head,
  head_scale, head_margin, whose 'the head's default' was once written 0 and -1, later None."""
  head = model.get('head', 'softmax')
  scale, margin = model.pop('head_scale', None), model.pop('head_margin', None)
  if not isinstance(head, str):
    return head
  head = {'name': head}
  if scale:
    head['scale'] = scale
  if margin is not None and margin >= 0:
    head['margin'] = margin
  return head


def _loss(loss: dict) -> dict:
  """Configs before 80a012c (2026-12-02): config.loss with each term's settings under its name,
  from the flat <term>_weight, margin (contrastive) and center_alpha; a recorded term's settings
  added since (TERM_SETTINGS_ADDED_SINCE) at the values those runs used."""
  old = {k: v for k, v in loss.items() if k != 'name' and not isinstance(v, dict)}
  new = {k: v for k, v in loss.items() if k not in old}
  for term in loss['name'].split('+'):
    short = term.rsplit('.', 1)[-1]
    moved = {'weight': old.get(f'{short}_weight'),
             'margin': old.get('margin') if short == 'contrastive' else None,
             'alpha': old.get('center_alpha') if short == 'center' else None}
    moved = {k: v for k, v in moved.items() if v is not None}
    if moved:
      new[short] = {**moved, **new.get(short, {})}
    if short in TERM_SETTINGS_ADDED_SINCE and isinstance(new.get(short), dict):
      new[short] = {**TERM_SETTINGS_ADDED_SINCE[short], **new[short]}
  return new


def _evals(saved: dict) -> dict:
  """Configs before 80a012c (2026-12-02): config.evals as {name: settings} from the tuples evals
  (final) and loop_evals (every eval_every_steps, 0 or None once per epoch), retrieval_ks and
  knn_block_size."""
  final = saved.pop('evals', ['accuracy', 'retrieval'])
  loop = saved.pop('loop_evals', ['accuracy'])
  every = saved.pop('eval_every_steps', None) or None
  ks, block = saved.pop('retrieval_ks', [1, 5, 10]), saved.pop('knn_block_size', 1024)
  new = {}
  for name in [*final, *loop]:
    label = name.rsplit('.', 1)[-1]
    new[label] = {'every_steps': every if name in loop else 0,
                  **({'type': name} if label != name else {})}
  if 'retrieval' in new:
    new['retrieval'].update(ks=ks, block_size=block)
  return new


def checkpoint_target(target, saved: dict):
  """Checkpoints before b7df663 (2026-11-28), when losses came to own their state, hold
  `centers` ([classes, dim] for the center loss, else a dummy [1, 1]) where newer ones hold
  `loss_state`. Returns (the target to restore, a function converting what was restored to
  today's arrays)."""
  if 'centers' not in saved or 'centers' in target:
    return target, lambda restored: restored
  centers = jax.ShapeDtypeStruct(saved['centers'], jax.numpy.float32)
  legacy = {**{k: v for k, v in target.items() if k != 'loss_state'}, 'centers': centers}

  def convert(restored):
    restored = dict(restored)
    c = restored.pop('centers')
    return {**restored, 'loss_state': {'center': c} if 'center' in target['loss_state'] else {}}
  return legacy, convert
