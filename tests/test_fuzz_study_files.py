"""Property-based fuzzing (Hypothesis) of the files the study tools read: a tuning space and a
sweep grid with any JSON value in any field must end in a clean run or in one of isx's one-line
errors, never in a traceback, and never write outside --out. Trials are replaced by a function
of their parameters: what is fuzzed is everything the tools check and write around them."""
import json
import os
import tempfile

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from configs import fashion_mnist_simplenet
from isx import errors, runs, tune

pytestmark = pytest.mark.slow

# Values a config holds too, so that fuzzed files get past the type checks into the runs.
PLAUSIBLE = st.sampled_from([0, 1, 2, 16, 0.5, 1e-3, 100.0, 'softmax', 'arcface', 'softmax+center',
                             'first_half', '0-4', 'validation', 'test', 'map@r', 'accuracy'])
JSON = st.recursive(
    PLAUSIBLE | st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() |
    st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=5)
# Keys where a value of the wrong type or range is likely to reach code past the file's checks.
KEYS = st.sampled_from(['learning_rate', 'model.xi', 'batch_size', 'num_train_steps',
                        'model.head.name', 'loss.name', 'evals.retrieval.ks', 'dataset.classes',
                        'dataset.validation_fraction', 'model.embedding_dim', 'seed', '', 'x.y'])
SETTINGS = settings(max_examples=int(os.environ.get('ISX_FUZZ_EXAMPLES', '400')), deadline=None,
                    derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
VALID_SPACE = {
    'trials': 2, 'startup_trials': 1, 'final_overrides': {},
    'trial_overrides': {'dataset.validation_fraction': 0.25, 'dataset.eval_split': 'validation',
                        'num_train_steps': 2},
    'methods': {'a': {'overrides': {'model.inward_scale': True},
                      'params': {'learning_rate': {'low': 1e-3, 'high': 1e-1, 'log': True}}}}}
# Where a fuzzed value goes: a path of keys into the valid space ('*': a fuzzed key).
SPACE_PLACES = [(), ('trials',), ('objective',), ('startup_trials',), ('enqueue_defaults',),
                ('final_seeds',), ('select_on',), ('methods',), ('methods', 'a'),
                ('methods', '*'), ('methods', 'a', 'overrides'), ('methods', 'a', 'params'),
                ('methods', 'a', 'overrides', '*'), ('methods', 'a', 'params', '*'),
                ('methods', 'a', 'params', 'learning_rate'),
                ('methods', 'a', 'params', 'learning_rate', 'low'),
                ('methods', 'a', 'params', 'learning_rate', 'choices'),
                ('trial_overrides', '*'), ('final_overrides', '*'), ('*',)]
VALID_GRID = [{'name': 'a', 'overrides': {'model.xi': 10.0}, 'seeds': [0, 1]}]
GRID_PLACES = [(), (0,), (0, 'name'), (0, 'overrides'), (0, 'seeds'), (0, 'overrides', '*'),
               (0, '*'), (1,)]


def _put(document, place, value, key):
  """document with value at place ('*' stands for key); () replaces it whole."""
  if not place:
    return value
  document = json.loads(json.dumps(document))
  node = document
  for part in place[:-1]:
    node = node[key if part == '*' else part]
  last = key if place[-1] == '*' else place[-1]
  if isinstance(node, list) and last >= len(node):
    node.append(value)
  else:
    node[last] = value
  return document


def _files(root) -> set:
  return {os.path.join(d, f) for d, _, files in os.walk(root) for f in files}


@pytest.fixture
def fake_runs(monkeypatch):
  def run_one(config, entry, seed, out, cpu=None, workdir=None):
    workdir = workdir or os.path.join(out, f'{entry["name"]}_{seed}')  # as runs.run_one names it
    os.makedirs(workdir, exist_ok=True)  # where a training would write
    open(os.path.join(workdir, 'config.json'), 'w').close()
    return {'name': entry['name'], 'seed': seed, 'overrides': entry.get('overrides', {}),
            'metrics': {'map@r': 0.5}}
  monkeypatch.setattr(runs, 'run_one', run_one)


def _tiny(data_dir):
  config = fashion_mnist_simplenet.get_config()
  config.dataset.data_dir = data_dir
  config.batch_size, config.eval_batch_size, config.model.embedding_dim = 16, 16, 16
  return config


def _outcome(root, name, document, run) -> bool:
  """Writes document to ROOT/NAME.json and calls run(path, out): True when it ran, False when it
  was refused with isx's one line before writing anything; either way, nothing is written
  outside --out."""
  path, out = os.path.join(root, f'{name}.json'), os.path.join(root, 'out')
  with open(path, 'w') as f:
    json.dump(document, f)
  before = _files(root)
  try:
    run(path, out)
    ran = True
  except errors.UserError as e:
    assert str(e).strip() and not os.path.exists(out), e  # refused before writing anything
    ran = False
  written = _files(root) - before
  assert all(p.startswith(out + os.sep) for p in written), written
  event('ran' if ran else 'refused')
  return ran


@SETTINGS
@given(place=st.sampled_from(SPACE_PLACES), value=JSON, key=KEYS)
def test_any_space_file_runs_cleanly_or_is_one_line(tiny_data_dir, fake_runs, place, value, key):
  with tempfile.TemporaryDirectory() as root:
    _outcome(root, 'space', _put(VALID_SPACE, place, value, key), lambda path, out: tune.run(
        tune.prepare(_tiny(tiny_data_dir), out, path), wait_seconds=0.1))


@SETTINGS
@given(place=st.sampled_from(GRID_PLACES), value=JSON, key=KEYS)
def test_any_grid_file_runs_cleanly_or_is_one_line(tiny_data_dir, fake_runs, place, value, key):
  """isx.sweep's own function, twice: each run is recorded once, inside --out."""
  from isx import sweep

  def twice(path, out):
    for _ in range(2):
      sweep.sweep(_tiny(tiny_data_dir), out, path)

  with tempfile.TemporaryDirectory() as root:
    if _outcome(root, 'grid', _put(VALID_GRID, place, value, key), twice):
      out, path = os.path.join(root, 'out'), os.path.join(root, 'grid.json')
      records = [json.loads(line) for name in os.listdir(out) if name.startswith('runs_')
                 for line in open(os.path.join(out, name))]
      pairs = [(r['name'], r['seed']) for r in records]
      assert len(pairs) == len(set(pairs)) == len(runs.shard_runs(runs.read_grid(path)))
