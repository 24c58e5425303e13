"""isx.sweep: grids of overrides x seeds, each run through train_and_evaluate."""
import json

import pytest

from configs import fashion_mnist_simplenet
from isx import sweep


def test_runs_shards_the_grid_in_order():
  grid = [{'name': 'a', 'seeds': [0, 1, 2]}, {'name': 'b'}, {'name': 'c', 'seeds': [5]}]
  names = lambda pairs: [(e['name'], s) for e, s in pairs]
  assert names(sweep.runs(grid)) == [('a', 0), ('a', 1), ('a', 2), ('b', 0), ('c', 5)]
  assert names(sweep.runs(grid, shard=(1, 2))) == [('a', 1), ('b', 0)]
  assert names(sweep.runs(grid, only={'c', 'b'})) == [('b', 0), ('c', 5)]


def test_run_one_trains_through_train_and_evaluate(tiny_config, tmp_path):
  entry = {'name': 'is', 'overrides': {'model.xi': 10.0}}
  record = sweep.run_one(tiny_config, entry, 1, str(tmp_path))
  assert record['name'] == 'is' and record['seed'] == 1 and record['overrides'] == {'model.xi': 10.0}
  assert record['metrics']['step'] == 6 and record['metrics']['num_examples'] == 37
  saved = json.loads((tmp_path / 'is_1' / 'config.json').read_text())
  assert saved['seed'] == 1 and saved['model']['xi'] == 10.0
  # The record holds the whole config (less the machine's data dir) and the commit that ran it.
  saved['dataset']['data_dir'] = None
  assert record['config'] == saved
  assert len(record['commit'].split('+')[0]) in (0, 40)
  assert (tmp_path / 'is_1' / 'eval' / 'metrics.json').exists()


def test_a_diverged_run_is_recorded_not_raised(tiny_config, tmp_path):
  entry = {'name': 'boom', 'overrides': {'learning_rate': 1e30, 'warmup_steps': 0}}
  record = sweep.run_one(tiny_config, entry, 0, str(tmp_path))
  assert record['diverged'] and 'non-finite' in record['error'] and 'metrics' not in record


def test_apply_overrides_rejects_unknown_keys():
  with pytest.raises(KeyError):
    sweep.apply_overrides(fashion_mnist_simplenet.get_config(), {'model.xii': 10.0})
