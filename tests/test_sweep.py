"""isx.sweep: grids of overrides x seeds, each run through train_and_evaluate."""
import glob
import json
import os
import re

import pytest

from configs import fashion_mnist_simplenet
from isx import runs as runs_lib


def test_runs_shards_the_grid_in_order():
  grid = [{'name': 'a', 'seeds': [0, 1, 2]}, {'name': 'b'}, {'name': 'c', 'seeds': [5]}]
  names = lambda pairs: [(e['name'], s) for e, s in pairs]
  assert names(runs_lib.shard_runs(grid)) == [('a', 0), ('a', 1), ('a', 2), ('b', 0), ('c', 5)]
  assert names(runs_lib.shard_runs(grid, shard=(1, 2))) == [('a', 1), ('b', 0)]
  assert names(runs_lib.shard_runs(grid, only={'c', 'b'})) == [('b', 0), ('c', 5)]


def test_run_one_trains_through_train_and_evaluate(tiny_config, tmp_path):
  entry = {'name': 'is', 'overrides': {'model.xi': 10.0}}
  record = runs_lib.run_one(tiny_config, entry, 1, str(tmp_path))
  assert record['name'] == 'is' and record['seed'] == 1 and record['overrides'] == {'model.xi': 10.0}
  assert record['metrics']['step'] == 6 and record['metrics']['num_examples'] == 37
  saved = json.loads((tmp_path / 'is_1' / 'config.json').read_text())
  assert saved['seed'] == 1 and saved['model']['xi'] == 10.0
  # The record holds the whole config (less the machine's data dir) and the commit that ran it.
  saved['dataset']['data_dir'] = None
  assert record['config'] == saved
  assert len(record['commit'].split('+')[0]) in (0, 40)
  assert (tmp_path / 'is_1' / 'eval' / 'metrics.json').exists()
  # The in-loop evals' curve (accuracy every 4 steps, and at the end) travels with the record.
  assert [p['step'] for p in record['curve']] == [4, 6]
  assert all(0.0 <= p['accuracy'] <= 1.0 for p in record['curve'])


def test_a_diverged_run_is_recorded_not_raised(tiny_config, tmp_path):
  entry = {'name': 'boom', 'overrides': {'learning_rate': 1e30, 'warmup_steps': 0}}
  record = runs_lib.run_one(tiny_config, entry, 0, str(tmp_path))
  assert record['diverged'] and 'non-finite' in record['error'] and 'metrics' not in record


def test_apply_overrides_rejects_unknown_keys():
  with pytest.raises(ValueError, match=r"grid override model.xii=10.0: the config has no field 'xii'; did you mean 'xi'"):
    runs_lib.apply_overrides(fashion_mnist_simplenet.get_config(), {'model.xii': 10.0})


@pytest.mark.parametrize('text, want', [('0/1', (0, 1)), ('1/2', (1, 2)), ('3/4', (3, 4))])
def test_parse_shard_reads_i_of_n(text, want):
  assert runs_lib.parse_shard(text) == want


@pytest.mark.parametrize('text', ['2/2', '-1/2', '0/0', '1', 'a/b', '1/2/3'])
def test_parse_shard_refuses_shards_that_run_nothing(text):
  with pytest.raises(ValueError, match=r'must be i/n with 0 <= i < n'):
    runs_lib.parse_shard(text)


def test_read_grid_names_what_is_wrong(tmp_path):
  good = tmp_path / 'good.json'
  good.write_text(json.dumps([{'name': 'a', 'overrides': {}, 'seeds': [0, 1]}]))
  assert runs_lib.read_grid(good)[0]['seeds'] == [0, 1]
  with pytest.raises(FileNotFoundError, match='not found; see results/grids/'):
    runs_lib.read_grid(tmp_path / 'missing.json')
  broken = tmp_path / 'broken.json'
  broken.write_text('[{"name": ')
  with pytest.raises(ValueError, match='is not JSON'):
    runs_lib.read_grid(broken)
  nameless = tmp_path / 'nameless.json'
  nameless.write_text(json.dumps({'overrides': {}}))
  with pytest.raises(ValueError, match='must be a JSON list'):
    runs_lib.read_grid(nameless)


def test_every_shipped_grid_reads_and_resolves():
  for path in sorted(glob.glob(os.path.join(os.path.dirname(__file__), '..', 'results', 'grids',
                                            '*.json'))):
    for entry, _ in runs_lib.shard_runs(runs_lib.read_grid(path)):
      runs_lib.apply_overrides(fashion_mnist_simplenet.get_config(), entry['overrides'])


def test_the_shard_comes_from_the_slurm_array_unless_given():
  array = {'SLURM_ARRAY_TASK_ID': '7', 'SLURM_ARRAY_TASK_MIN': '5', 'SLURM_ARRAY_TASK_COUNT': '3'}
  assert runs_lib.shard_of(None, array) == ((2, 3), 1)  # each task has cores of its own
  assert runs_lib.shard_of('1/2', array) == ((1, 2), 2)  # an explicit --shard wins
  assert runs_lib.shard_of(None, {}) == ((0, 1), 1)
  with pytest.raises(ValueError, match='--shard=3/3 must be i/n with 0 <= i < n'):
    runs_lib.shard_of(None, {**array, 'SLURM_ARRAY_TASK_ID': '8'})


def test_a_finished_run_is_recorded_once_and_a_changed_entry_is_refused(tmp_path):
  grid = [{'name': 'a', 'overrides': {'model.xi': 10.0}, 'seeds': [0, 1]}]
  assert runs_lib.recorded_runs(str(tmp_path / 'none'), 'G', grid) == {}
  records = [{'name': 'a', 'seed': 0, 'overrides': {'model.xi': 10.0}, 'metrics': {}},
             {'name': 'b', 'seed': 0, 'overrides': {}, 'metrics': {}},  # another grid's
             {'name': 'a', 'seed': 1, 'overrides': {'model.xi': 10.0}, 'diverged': True}]
  (tmp_path / 'runs_0.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records) + '{"na')
  assert runs_lib.recorded_runs(str(tmp_path), 'G', grid) == {('a', 0): 'runs_0.jsonl',
                                                               ('a', 1): 'runs_0.jsonl'}
  grid[0]['overrides']['num_train_steps'] = 4
  with pytest.raises(ValueError, match=r'runs_0.jsonl records run a seed 0 with other overrides '
                     r'than --grid G gives it .*; rename the entry or use a new --out'):
    runs_lib.recorded_runs(str(tmp_path), 'G', grid)


@pytest.mark.parametrize('grid, message', [
    ([{'name': 'a'}, {'name': 'a', 'overrides': {'num_train_steps': 4}}],
     'names a more than once'),
    ([{'name': '../escaped'}], "entry name '../escaped' cannot name a folder inside --out"),
    ([{'name': 'a/b'}], "entry name 'a/b' cannot name a folder"),
    ([{'name': 'a', 'overrides': [['model.xi', 1]]}], '"overrides" must be an object'),
    ([{'name': 'a', 'seeds': [0, 0]}], '"seeds" a list of distinct integers >= 0'),
    ([{'name': 'a', 'seeds': [-1]}], '"seeds" a list of distinct integers >= 0'),
    ([{'name': 'a', 'seed': [1]}], 'unknown field(s) seed'),
])
def test_a_grid_that_could_lose_or_misfile_a_run_is_refused(tmp_path, grid, message):
  path = tmp_path / 'grid.json'
  path.write_text(json.dumps(grid))
  with pytest.raises(ValueError, match=re.escape(message)):
    runs_lib.read_grid(str(path))
