"""benchmarks/time_to_accuracy.py launches isx.main and records the seconds to each eval;
results/time_to_accuracy.py turns the records into the table and checks their configs."""
import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load(path, name):
  spec = importlib.util.spec_from_file_location(name, ROOT / path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_seconds_to_target_is_the_first_eval_reaching_it():
  report = _load('results/time_to_accuracy.py', 'tta_report')
  record = {'curve': [{'seconds': 10.0, 'accuracy': 0.90}, {'seconds': 20.0, 'accuracy': 0.935},
                      {'seconds': 30.0, 'accuracy': 0.94}]}
  assert report.seconds_to(record) == 20.0
  assert report.seconds_to(record, target=0.95) is None


def test_search_table_reads_the_recorded_configs(tmp_path):
  report = _load('results/time_to_accuracy.py', 'tta_report')
  report.HERE = str(tmp_path)
  assert report.search_table() == 'No records yet.'
  config = {'model': {'inward_scale': True}, 'num_epochs': 2, 'warmup_steps': 50,
            'batch_size': 64, 'learning_rate': 0.02, 'weight_decay': 0.05,
            'loss': {'softmax': {'label_smoothing': 0.1}}, 'dataset': {}}
  record = {'config': config, 'metrics': {'step': 1874, 'accuracy': 0.9116},
            'curve': [{'accuracy': 0.8601}, {'accuracy': 0.9116}]}
  (tmp_path / 'raw').mkdir()
  (tmp_path / 'raw' / f'{report.SEARCH}.jsonl').write_text(json.dumps(record) + '\n')
  row = report.search_table().splitlines()[2]
  assert row == '| yes | 2 | 50 | 64 | 0.02 | 0.05 | 0.1 | False | 0.0 | 1874 | 86.01 | **91.16** |'


def test_sets_are_typed_literals_or_strings():
  bench = _load('benchmarks/time_to_accuracy.py', 'tta_bench')
  assert bench.parse_sets(['num_epochs=3', 'model.dtype=bfloat16', 'learning_rate=1e-3']) == {
      'num_epochs': 3, 'model.dtype': 'bfloat16', 'learning_rate': 1e-3}


@pytest.mark.slow
def test_a_launched_run_is_recorded_tabled_and_checked(tiny_data_dir, tmp_path):
  record = tmp_path / 'raw' / 'fashion_mnist_fast.jsonl'
  record.parent.mkdir()
  tiny = ['model.embedding_dim=16', 'batch_size=16', 'eval_batch_size=16', 'log_every_steps=2',
          'num_train_steps=4', 'evals.accuracy.every_steps=2']
  args = [sys.executable, 'benchmarks/time_to_accuracy.py', '--config=configs/fashion_mnist_fast.py',
          f'--data_dir={tiny_data_dir}', '--arms=is', '--seeds=0', f'--out={tmp_path / "runs"}',
          f'--record={record}', *(f'--set={s}' for s in tiny)]
  p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]
  r = json.loads(record.read_text())
  assert [pt['step'] for pt in r['curve']] == [2, 4]  # the in-loop eval, then the final one
  assert 0 < r['curve'][0]['seconds'] < r['curve'][1]['seconds'] == r['seconds']
  assert r['curve'][1]['accuracy'] == r['metrics']['accuracy']
  # Run again: the (name, seed, overrides) is on record, so nothing is launched.
  again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert again.returncode == 0 and again.stdout == ''
  report = _load('results/time_to_accuracy.py', 'tta_report')
  report.HERE = str(tmp_path)
  make_report = _load('results/make_report.py', 'make_report')
  assert '`fashion_mnist_fast` (' in report.table()
  assert report.problems(make_report.config_problems) == []
  r['config']['warmup_steps'] = 7  # a config that its command no longer gives
  record.write_text(json.dumps(r) + '\n')
  assert report.problems(make_report.config_problems) == [
      'fashion_mnist_fast/fashion_mnist_fast seed 0: warmup_steps (7 recorded, 200 today)']
