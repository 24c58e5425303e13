"""Time to accuracy from benchmarks/time_to_accuracy.py's records
(results/raw/fashion_mnist_fast.jsonl): each run's seconds from launching isx.main to
eval/metrics.json, and the seconds of its in-loop evals. make_report.py writes the table and the
plot (results/time_to_accuracy.png) and --check runs problems().

The recipe search's records (results/raw/fashion_mnist_fast_search.jsonl, the same script with
--set overrides of an earlier fast config) are tabled from the configs they recorded, accuracy
only: other jobs shared the cores during some of them, so their seconds do not compare."""
import importlib
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RECORDS = 'fashion_mnist_fast'
SEARCH = 'fashion_mnist_fast_search'
TARGET = 0.93  # the paper's FashionMNIST accuracy with IS (93.00)


def _records(name=RECORDS):
  path = os.path.join(HERE, 'raw', f'{name}.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f]


def groups() -> dict:
  """{(config file, arm, overrides as text): its records by seed}."""
  out = {}
  for r in _records():
    key = (r['config_file'], r['arm'], json.dumps(r['overrides'], sort_keys=True))
    out.setdefault(key, {})[r['seed']] = r  # a re-measured seed keeps its newest record
  return {k: [v[s] for s in sorted(v)] for k, v in out.items()}


def seconds_to(record, target=TARGET):
  """Seconds from the launch to the first eval at or above target; None if never."""
  return next((p['seconds'] for p in record['curve'] if p['accuracy'] >= target), None)


def _label(key):
  config, arm, overrides = key
  extra = ', '.join(f'{k}={v}' for k, v in json.loads(overrides).items())
  name = os.path.basename(config)[:-3] + ('' if arm == 'is' else f':{arm}')
  return f'`{name}`' + (f' ({extra})' if extra else '')


def _mean_sd(values, scale=100.0, digits=2):
  text = f'{scale * statistics.mean(values):.{digits}f}'
  return text + (f' ± {scale * statistics.stdev(values):.{digits}f}' if len(values) > 1 else '')


def table() -> str:
  runs = groups()
  if not runs:
    return 'No records yet.'
  head = ['recipe', 'steps', 'seeds', 'test accuracy', 'per seed',
          'seconds, launch to metrics.json', f'seconds to {100 * TARGET:.0f}%', 'host', 'load']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for key, rs in runs.items():
    reached = [seconds_to(r) for r in rs]
    host = rs[0]['host']
    lines.append('| ' + ' | '.join([
        _label(key), str(rs[0]['metrics']['step']), ','.join(str(r['seed']) for r in rs),
        _mean_sd([r['metrics']['accuracy'] for r in rs]),
        ' / '.join(f'{100 * r["metrics"]["accuracy"]:.2f}' for r in rs),
        _mean_sd([r['seconds'] for r in rs], 1.0, 0),
        ' / '.join('-' if s is None else f'{s:.0f}' for s in reached),
        f'{host["cpu"]}, {host["cores"]} cores, {rs[0]["date"]}',
        ' / '.join(f'{r["load_before"]:.1f}' for r in rs)]) + ' |')
  lines += ['', 'Measured with (any config, arms and seeds; --set=KEY=VALUE for overrides):', '',
            '    python benchmarks/time_to_accuracy.py --config=configs/fashion_mnist_fast.py '
            '--data_dir=DATA --arms=is,baseline --seeds=0,1,2']
  return '\n'.join(lines)


def search_table() -> str:
  """One row per search run: the training settings it recorded and its test accuracy, after
  each epoch and at the end."""
  runs = sorted(_records(SEARCH), key=lambda r: r['config']['num_epochs'])
  if not runs:
    return 'No records yet.'
  head = ['IS', 'epochs', 'warm-up', 'batch', 'lr', 'weight decay', 'label smoothing',
          'test-time flip', 'EMA decay', 'steps', 'test accuracy by epoch', 'final']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in runs:
    c = r['config']
    lines.append('| ' + ' | '.join(str(v) for v in [
        'yes' if c['model']['inward_scale'] else 'no', c['num_epochs'], c['warmup_steps'],
        c['batch_size'], c['learning_rate'], c['weight_decay'],
        c['loss']['softmax'].get('label_smoothing', 0.0),
        c['dataset'].get('test_time_flip', False), c.get('ema_decay', 0.0), r['metrics']['step'],
        ' / '.join(f'{100 * p["accuracy"]:.2f}' for p in r['curve'][:-1]) or '-',
        f'**{100 * r["metrics"]["accuracy"]:.2f}**']) + ' |')
  lines += ['', 'Measured with (seed 0; the overrides in each record):', '',
            '    python benchmarks/time_to_accuracy.py --config=configs/fashion_mnist_fast.py '
            '--data_dir=DATA --arms=is --seeds=0 --record=results/raw/fashion_mnist_fast_search.jsonl '
            '--set=num_epochs=2 --set=warmup_steps=50 --set=learning_rate=0.02']
  return '\n'.join(lines)


def figure(plt, out_path):
  """Test accuracy against seconds from the launch, one line per run."""
  runs = groups()
  if not runs:
    return
  fig, ax = plt.subplots(figsize=(6, 3.6))
  for i, (key, rs) in enumerate(runs.items()):
    for j, r in enumerate(rs):
      xs, ys = zip(*((p['seconds'], p['accuracy']) for p in r['curve']))
      ax.plot(xs, ys, '.-', color=f'C{i}', alpha=0.7, label=_label(key).strip('`') if j == 0
              else None)
  ax.axhline(TARGET, color='k', lw=0.8, ls=':', label=f'{100 * TARGET:.0f}% (the paper, with IS)')
  host = next(iter(runs.values()))[0]['host']
  # Log seconds: the 20-epoch default recipe's curve runs ~7x as long as the fast one's.
  ax.set(xlabel='seconds from launching isx.main (log scale)', ylabel='test accuracy',
         xscale='log', ylim=(0.85, 0.95),
         title=f'FashionMNIST, {host["cpu"]}, {host["cores"]} cores')
  ax.legend(fontsize=7, loc='lower right')
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(out_path, dpi=90)
  plt.close(fig)


def problems(config_problems) -> list:
  """--check: each record's config is what its config file, arm and overrides give today."""
  sys.path.insert(0, ROOT)
  from isx import runs as runs_lib  # noqa: E402
  out = []
  for (config, arm, overrides), rs in groups().items():
    module = importlib.import_module(config[:-3].replace('/', '.'))
    base = module.get_config(None if arm == 'is' else arm)
    for r in rs:
      today = runs_lib.apply_overrides(base, {**json.loads(overrides), 'seed': r['seed']})
      out += config_problems(f'{RECORDS}/{r["name"]} seed {r["seed"]}', r['config'], today)
  return out
