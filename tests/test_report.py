"""results/make_report.py --check: every RESULTS row re-runs from its printed command."""
import importlib.util
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _report(results_dir=ROOT / 'results'):
  spec = importlib.util.spec_from_file_location('make_report', ROOT / 'results' / 'make_report.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  module.HERE = str(results_dir)
  return module


def test_every_recorded_row_resolves_to_its_recorded_config():
  report = _report()
  assert report.stale_configs() == []
  summary = [row for grid in (*report.CURRENT, *report.HISTORY) for row in report.rows(grid)]
  markdown = (ROOT / 'RESULTS.md').read_text()
  assert report.fill(markdown, report.tables(summary)) == markdown, (
      'RESULTS.md\'s generated tables are stale: run python results/make_report.py')


def test_a_grid_edited_after_its_runs_is_named(tmp_path):
  shutil.copytree(ROOT / 'results' / 'raw', tmp_path / 'raw')
  shutil.copytree(ROOT / 'results' / 'grids', tmp_path / 'grids')
  grid = tmp_path / 'grids' / 'fashion_mnist_default.json'
  entries = json.loads(grid.read_text())
  entries[0]['overrides']['num_epochs'] = 10
  grid.write_text(json.dumps(entries))
  problems = _report(tmp_path).stale_configs()
  assert problems and all(p.startswith('fashion_mnist_default/default_is seed ') for p in problems)
  assert 'num_epochs (20 recorded, 10 today)' in problems[0]


def test_a_record_without_its_config_is_refused(tmp_path):
  shutil.copytree(ROOT / 'results' / 'raw', tmp_path / 'raw')
  shutil.copytree(ROOT / 'results' / 'grids', tmp_path / 'grids')
  raw = tmp_path / 'raw' / 'fashion_mnist_default_retrieval.jsonl'
  records = [json.loads(line) for line in raw.read_text().splitlines()]
  del records[0]['config']
  raw.write_text(''.join(json.dumps(r) + '\n' for r in records))
  assert _report(tmp_path).stale_configs() == [
      'fashion_mnist_default_retrieval/ret_is seed 0: the record holds no config; move its grid '
      'to HISTORY']
