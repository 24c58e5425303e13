"""results/make_report.py --check: every RESULTS row re-runs from its printed command."""
import importlib.util
import json
import pathlib
import shutil

import pytest

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
  blocks = report.tables(summary)
  for name in ('RESULTS.md', 'README.md'):  # README.md: the studies' verdicts
    markdown = (ROOT / name).read_text()
    assert report.fill(markdown, blocks) == markdown, (
        f'{name}\'s generated tables are stale: run python results/make_report.py')


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


@pytest.mark.slow  # --check over every record, twice: the full suite's
def test_a_changed_plugin_default_makes_check_fail_naming_its_rows(tmp_path):
  """In a scratch copy, ArcFace's default scale moves from 30 to 64: the arcface row, which
  recorded the 30 it trained with, no longer re-runs from its command, and --check says so."""
  import subprocess
  import sys
  for name in ('isx', 'configs', 'results'):
    shutil.copytree(ROOT / name, tmp_path / name,
                    ignore=shutil.ignore_patterns('*.png', '*.npz', '__pycache__'))
  shutil.copy(ROOT / 'RESULTS.md', tmp_path)
  shutil.copy(ROOT / 'README.md', tmp_path)
  head = tmp_path / 'isx' / 'heads' / 'arcface.py'
  source = head.read_text()
  assert 'scale: float = 30.0' in source
  head.write_text(source.replace('scale: float = 30.0', 'scale: float = 64.0'))
  p = subprocess.run([sys.executable, 'results/make_report.py', '--check'], cwd=tmp_path,
                     capture_output=True, text=True, timeout=300)
  assert p.returncode != 0
  stale = [line for line in (p.stdout + p.stderr).splitlines() if 'model.head' in line]
  assert stale[0] == ('stale: fashion_mnist_heads/arcface seed 0: model.head.scale (30.0 '
                      'recorded, 64.0 today)'), p.stdout[-2000:]
  # the tuned studies' defaults trials: what isx.tune would enqueue as "defaults" moved too
  assert [line.split(': its defaults trial')[0] for line in stale[1:]] == [
      'stale: fashion_mnist_open_set arcface', 'stale: fashion_mnist_closed_set arcface'], p.stdout[-2000:]
