"""Which examples train and which are scored, from config.dataset's class and validation settings
(every dataset has them; isx reads them, not the plug-in):

- `classes`: the classes the model trains on: 'all' (the default), 'first_half' (the metric
  learning convention of Musgrave et al. 2020: train on the first half, test on the unseen
  second half), 'second_half', a range '0-4' or a list '0,2,5'. The head has one output per
  training class, and the training labels are renumbered 0..k-1 in that order. With classes
  held out, the test split is scored on the held-out classes only, searched against themselves,
  and accuracy, undefined on classes the head never saw, is not computed.
- `validation_classes` N > 0: open-set selection: the last N training classes are held out of
  training and their train-split images are the validation split.
- `validation_fraction` f > 0: closed-set selection: a fixed, seeded fraction f of the training
  examples is held out as the validation split.
- `validation_fold` F (default 0) picks which classes or examples are held out. Open-set: windows
  of N training classes laid end to end backwards from the last, around the list: fold 0 is the
  last N, folds below K // N are disjoint, and K / gcd(K, N) folds hold every one of the K
  training classes out equally often (5 classes, N = 2: {3,4}, {1,2}, {4,0}, {2,3}, {0,1}).
  Closed-set: the F-th slice of the seeded order, floor(1 / f) disjoint folds.
- `eval_split='validation'` scores the validation split instead of the test split; selection
  (isx.sweep grids, tuning) reads it, never the test split.
"""
import math

import numpy as np

from isx import errors

VALIDATION = 'validation'
_SEED = 20240501  # the held-out fraction is the same for every run and seed


def parse(spec: str, num_classes: int) -> tuple:
  """The training classes that spec names, in order; one line when it names a class the dataset
  lacks, every class but is not 'all', or none."""
  spec = str(spec).strip()
  half = num_classes // 2
  named = {'all': range(num_classes), 'first_half': range(half),
           'second_half': range(half, num_classes)}
  try:
    if spec in named:
      classes = list(named[spec])
    elif '-' in spec and ',' not in spec:
      first, last = (int(v) for v in spec.split('-'))
      classes = list(range(first, last + 1))
    else:
      classes = [int(v) for v in spec.split(',') if v.strip()]
  except ValueError:
    raise errors.ConfigError(f"dataset.classes {spec!r} is not 'all', 'first_half', "
                             f"'second_half', a range like '0-4' or a list like '0,2,5'") from None
  if not classes:
    raise errors.ConfigError(f'dataset.classes {spec!r} names no class; name the classes to '
                             f'train on')
  bad = sorted(c for c in classes if not 0 <= c < num_classes)
  if bad:
    raise errors.ConfigError(f'dataset.classes {spec!r} names classes the dataset lacks '
                             f'({", ".join(map(str, bad))}); it has classes 0-{num_classes - 1}')
  if len(set(classes)) < len(classes):
    raise errors.ConfigError(f'dataset.classes {spec!r} names a class twice')
  if spec != 'all' and sorted(classes) == list(range(num_classes)):
    raise errors.ConfigError(f"dataset.classes {spec!r} names every class, so none is held out; "
                             f"write 'all' for that")
  return tuple(classes)


def check_settings(dataset):
  """The settings' own ranges, before any data is read."""
  if not isinstance(dataset.classes, str):
    raise errors.ConfigError(f"dataset.classes must be a string ('all', 'first_half', '0-4', "
                             f"'0,2,5'), got {dataset.classes!r}")
  number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
  if not number(dataset.validation_fraction) or not 0 <= dataset.validation_fraction < 1:
    raise errors.ConfigError(f'dataset.validation_fraction must be in [0, 1), got '
                             f'{dataset.validation_fraction!r}')
  if not (isinstance(dataset.validation_classes, int) and
          not isinstance(dataset.validation_classes, bool)) or dataset.validation_classes < 0:
    raise errors.ConfigError(f'dataset.validation_classes must be an integer >= 0, got '
                             f'{dataset.validation_classes!r}')
  fold = dataset.get('validation_fold', 0)
  if not isinstance(fold, int) or isinstance(fold, bool) or fold < 0:
    raise errors.ConfigError(f'dataset.validation_fold must be an integer >= 0, got {fold!r}')
  if fold and not (dataset.validation_classes or dataset.validation_fraction):
    raise errors.ConfigError(f'dataset.validation_fold={fold} picks a fold of the validation '
                             f'split: set dataset.validation_classes or validation_fraction too')
  if dataset.validation_classes and dataset.validation_fraction:
    raise errors.ConfigError('set dataset.validation_classes (open-set) or '
                             'dataset.validation_fraction (closed-set), not both')
  if dataset.eval_split == VALIDATION and not (dataset.validation_classes or
                                               dataset.validation_fraction):
    raise errors.ConfigError("dataset.eval_split='validation' needs a validation split: set "
                             "dataset.validation_classes or dataset.validation_fraction")


def active(dataset) -> bool:
  return (dataset.get('classes', 'all') != 'all' or dataset.get('validation_classes', 0) > 0 or
          dataset.get('validation_fraction', 0.0) > 0)


def split(dataset, num_classes: int, train_labels, eval_labels):
  """(training classes in head order, train ids, eval ids or None for the whole split): ids are
  indices into the train split and into the split that is scored (the train split itself for
  'validation', else dataset.eval_split, whose labels are eval_labels)."""
  classes = parse(dataset.classes, num_classes)
  if len(classes) < 2:
    raise errors.ConfigError(
        f'dataset.classes {dataset.classes!r} trains on {len(classes)} class of the '
        f'{num_classes}: with one class the loss and its gradient are 0 at every step, so '
        f'nothing would train; name at least 2 classes')
  held_out = sorted(set(range(num_classes)) - set(classes))
  train_labels = np.asarray(train_labels)
  fold = dataset.get('validation_fold', 0)
  if dataset.validation_classes:
    if dataset.validation_classes > len(classes) - 2:
      raise errors.ConfigError(
          f'dataset.validation_classes={dataset.validation_classes} leaves fewer than 2 of the '
          f'{len(classes)} training classes to train on')
    n, k = dataset.validation_classes, len(classes)
    _check_fold(fold, k // math.gcd(k, n), f'{k} training classes in windows of {n}')
    held = {(k - (fold + 1) * n + i) % k for i in range(n)}
    validation = tuple(c for i, c in enumerate(classes) if i in held)
    classes = tuple(c for i, c in enumerate(classes) if i not in held)
    validation_ids = np.flatnonzero(np.isin(train_labels, validation))
  train_ids = np.flatnonzero(np.isin(train_labels, classes))
  if dataset.validation_fraction:
    order = np.random.default_rng(_SEED).permutation(train_ids)
    n = int(round(dataset.validation_fraction * len(order)))
    _check_fold(fold, len(order) // n if n else 1,
                f'slices of {dataset.validation_fraction} of the training examples')
    validation_ids = np.sort(order[fold * n:(fold + 1) * n])
    train_ids = np.sort(np.concatenate([order[:fold * n], order[(fold + 1) * n:]]))
    if not (len(validation_ids) and len(train_ids)):
      raise errors.ConfigError(
          f'dataset.validation_fraction={dataset.validation_fraction} of the {len(order)} '
          f'training examples leaves {len(train_ids)} to train on and {len(validation_ids)} to '
          f'validate on; choose a fraction that leaves both')
  if dataset.eval_split == VALIDATION:
    eval_ids = validation_ids
  elif held_out:
    eval_ids = np.flatnonzero(np.isin(np.asarray(eval_labels), held_out))
  else:
    eval_ids = None
  return tuple(classes), train_ids, eval_ids


def _check_fold(fold, folds, what):
  if fold >= folds:
    raise errors.ConfigError(f'dataset.validation_fold={fold}: {what} make {folds} '
                             f'folds (0 to {folds - 1})')


def head_labels(labels, classes):
  """Dataset labels as the head's outputs number them (classes[i] -> i); -1 for a class the
  head does not have."""
  lookup = np.full(max(max(classes), int(np.max(labels, initial=0))) + 1, -1, np.int64)
  lookup[list(classes)] = np.arange(len(classes))
  return lookup[np.asarray(labels)]
