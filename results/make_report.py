"""Turns the sweep records in results/raw/ into results/summary.json, the figures in results/ and
the generated tables of RESULTS.md (the blocks between `<!-- table:NAME -->` and
`<!-- /table -->`, rewritten in place).

  python results/make_report.py           # rebuild summary.json, the figures, RESULTS.md's tables
  python results/make_report.py --check   # trains nothing; fails when a record or a table is stale

--check re-resolves every row's printed command with today's code (configs/ + the grid file) and
compares the result with the values the run recorded, naming the row and the differing fields. It
compares values only: a setting the record does not hold is a problem of its own, never filled in
from today's defaults. It also fails when a generated table in RESULTS.md differs from what the
records give.
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import studies  # noqa: E402  results/: the tuned studies' tables and checks
import time_to_accuracy  # noqa: E402  results/: the fast recipe's table and plot

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPECTRUM = 'embedding_spectrum/'
KEYS = ('accuracy', 'recall@1', 'recall@5', 'recall@10', 'precision@1', 'precision@5',
        'precision@10', 'map@r', 'embedding_norm/median', SPECTRUM + 'participation_ratio',
        SPECTRUM + 'top4_share', SPECTRUM + 'top76_share', SPECTRUM + 'top154_share')
RAW = ('embedding_norm/median', SPECTRUM + 'participation_ratio')  # printed as they are, not in %
PAPER = {  # the paper's numbers, as fractions (Table 2 and Table 6, FashionMNIST)
    'default_is': {'accuracy': 0.9300}, 'default_nois': {'accuracy': 0.8964},
    'ret_is': {'recall@1': 0.8875, 'recall@5': 0.9588, 'recall@10': 0.9733},
    'ret_nois': {'recall@1': 0.8675, 'recall@5': 0.9563, 'recall@10': 0.9722},
}
PAPER.update({f'{name}_20ep': PAPER[name] for name in ('ret_is', 'ret_nois')})
# Appendix A's xi sweep ran on MNIST, not FashionMNIST: a shape to compare, not a number.
PAPER_XI = {'xi_100': {'accuracy': 0.9933}, 'xi_1e3': {'accuracy': 0.9020},
            'xi_1e4': {'accuracy': 0.4884}, 'xi_1e5': {'accuracy': 0.2110}}
BASE_CONFIG = 'fashion_mnist_simplenet'
GRID_CONFIG = {'glyphs_default': 'glyphs_simplenet',  # the others run from BASE_CONFIG
               'fashion_mnist_open_set_convergence': 'fashion_mnist_open_set'}
# Grids whose records re-run from their printed command today (checked by --check).
CURRENT = ('fashion_mnist_default', 'fashion_mnist_default_retrieval', 'fashion_mnist_heads',
           'fashion_mnist_xi', 'fashion_mnist_2d', 'glyphs_default',
           'fashion_mnist_open_set_convergence')
# Grids of earlier recipes: reported with the commit that made them, no command.
HISTORY = ('fashion_mnist_adamw', 'fashion_mnist_l2', 'fashion_mnist_one_epoch',
           'fashion_mnist_warmup')
# Config fields that cannot change a run's numbers (paths, logging, which metrics are computed);
# the rest of what isx lets differ (epochs, steps, dtype, eval split) must match.
MUST_MATCH = ('num_epochs', 'num_train_steps', 'model.dtype', 'dataset.eval_split')


def command(grid):
  config = GRID_CONFIG.get(grid, BASE_CONFIG)
  return (f'python -m isx.sweep --config=configs/{config}.py --config.dataset.data_dir=DATA '
          f'--out=OUT --grid=results/grids/{grid}.json')


def load(grid):
  runs = collections.defaultdict(list)
  path = os.path.join(HERE, 'raw', f'{grid}.jsonl')
  if not os.path.exists(path):  # a grid not run yet
    return runs
  with open(path) as f:
    for number, line in enumerate(f, 1):
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        raise SystemExit(f'error: {path} line {number} is not JSON (a write cut short?); '
                         f'remove that line and run again') from None
      if 'metrics' in record or record.get('diverged'):
        if any(r['seed'] == record['seed'] for r in runs[record['name']]):
          # one run recorded twice would pass for two seeds in every mean and std
          raise SystemExit(f'error: {path} records run {record["name"]} seed {record["seed"]} '
                           f'twice (line {number}); keep one of them and run again')
        runs[record['name']].append(record)
  return runs


def grid_entries(grid):
  with open(os.path.join(HERE, 'grids', f'{grid}.json')) as f:
    return json.load(f)


def first_commit(grid):
  """The commit that added a history grid's records ('' without git)."""
  try:
    out = subprocess.run(['git', 'log', '--diff-filter=A', '--format=%h', '--',
                          f'results/raw/{grid}.jsonl'], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
  except (OSError, subprocess.CalledProcessError):
    return ''
  return out[-1] if out else ''


def summarise(grid, runs, name):
  records = sorted((r for r in runs[name] if 'metrics' in r), key=lambda r: r['seed'])
  overrides = runs[name][0]['overrides']
  per_key = {k: [r['metrics'][k] for r in records if k in r['metrics']] for k in KEYS}
  row = {
      'experiment': f'{grid}/{name}', 'grid': grid, 'name': name, 'overrides': overrides,
      'epochs': overrides.get('num_epochs'),
      'seconds': [round(r.get('seconds', r['metrics'].get('train_seconds', 0))) for r in records],
      'seeds': sorted(r['seed'] for r in records),
      'device': records[0]['device'],
      'metrics': {k: statistics.mean(v) for k, v in per_key.items() if v},
      'per_seed': {k: v for k, v in per_key.items() if v},
      # the sample standard deviation over the seeds (n - 1), the one convention of RESULTS.md
      'std': {k: statistics.stdev(v) for k, v in per_key.items() if len(v) > 1},
      'diverged': sorted(r['seed'] for r in runs[name]
                         if r.get('diverged') or not r['metrics'].get('finite', True)),
      'paper': (PAPER_XI if grid == 'fashion_mnist_xi' else PAPER).get(name),
  }
  if grid in CURRENT:
    row['command'] = f'{command(grid)} --only={name}'
    row['config'] = recorded_config(records[0])
  else:
    row['commit'] = first_commit(grid)
  return row


def recorded_config(record) -> dict:
  """The config a run recorded, in today's form, holding only the values it recorded."""
  sys.path.insert(0, ROOT)
  from isx import upgrade  # noqa: E402
  return upgrade.config(record['config'])


def rows(grid):
  runs = load(grid)
  return [summarise(grid, runs, e['name']) for e in grid_entries(grid) if e['name'] in runs]


def pct(row, key, scale=100.0):
  if key not in row['metrics']:
    return '-'
  text = f'{scale * row["metrics"][key]:.2f}'
  if key in row['std']:
    text += f' ± {scale * row["std"][key]:.2f}'
  return text


def cell(row, key):
  return pct(row, key, 1.0) if key in RAW else pct(row, key)


def table(rows_, keys, label=lambda r: r['experiment'], paper=True, per_seed=None):
  """A markdown table; per_seed names a metric also listed seed by seed."""
  names = {'embedding_norm/median': 'median norm', SPECTRUM + 'participation_ratio':
           'participation ratio', **{SPECTRUM + f'top{k}_share': f'top-{k} share' for k in (4, 76, 154)}}
  head = ['run', 'epochs', 'seeds', *(names.get(k, k) for k in keys)]
  head += [f'{per_seed}, per seed'] if per_seed else []
  head += ['paper'] if paper else []
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows_:
    seeds = ','.join(map(str, r['seeds']))
    cells = [label(r), str(r['epochs']), seeds, *(cell(r, k) for k in keys)]
    if per_seed:
      cells.append(' / '.join(f'{100 * v:.2f}' for v in r['per_seed'].get(per_seed, [])) or '-')
    if paper:
      cells.append(', '.join(f'{k} {100 * v:.2f}' for k, v in (r['paper'] or {}).items()
                             if k in keys) or '-')
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def commands(rows_):
  by_grid = collections.defaultdict(list)
  for r in rows_:
    by_grid[r['grid']].append(r['name'])
  return '\n'.join(f'    {command(g)} --only={",".join(n)}' for g, n in by_grid.items())


# The heads table's rows in order; each label is made from the settings its records hold.
HEAD_ROWS = ('default_nois', 'default_is', 'l2_softmax', 'normface', 'cosface', 'arcface',
             'subcenter_arcface', 'sphereface', 'center_nois', 'center_is')
HEAD_NAMES = {'softmax': 'softmax', 'l2_softmax': 'L2-softmax', 'normface': 'NormFace',
              'cosface': 'CosFace', 'arcface': 'ArcFace', 'subcenter_arcface': 'sub-center ArcFace',
              'sphereface': 'SphereFace'}
SETTING_NAMES = {'scale': 's', 'margin': 'm', 'subcenters': 'K', 'lambda_min': 'lambda_min'}


def head_label(row):
  """'ArcFace (s 30, m 0.5)', 'softmax + IS (xi 100) + center loss (weight 0.01)': the head, IS
  and the extra loss term, with the values the run recorded."""
  config = row['config']
  head = dict(config['model']['head'])
  name = head.pop('name')
  names = {**SETTING_NAMES, 'scale': 'alpha'} if name == 'l2_softmax' else SETTING_NAMES
  settings = ', '.join(f'{names.get(k, k)} {v:g}' for k, v in
                       sorted(head.items(), key=lambda kv: (kv[0] != 'scale', kv[0])))
  label = HEAD_NAMES.get(name, name) + (f' ({settings})' if settings else '')
  if config['model']['inward_scale']:
    label += f' + IS (xi {config["model"]["xi"]:g})'
  if 'center' in config['loss']:
    label += f' + center loss (weight {config["loss"]["center"]["weight"]:g})'
  return label


def tables(summary):
  """{table name: markdown}, each table followed by the command that re-runs its rows."""
  by_grid = collections.defaultdict(list)
  for r in summary:
    by_grid[r['grid']].append(r)
  out = {}
  default = by_grid['fashion_mnist_default']
  out['default'] = table(default, ['accuracy', 'recall@1', 'recall@5', 'recall@10',
                                   'precision@10', 'map@r'], per_seed='accuracy')
  out['retrieval'] = table(by_grid['fashion_mnist_default_retrieval'],
                           ['accuracy', 'recall@1', 'recall@5', 'recall@10', 'map@r'],
                           per_seed='recall@1')
  heads = sorted(default + by_grid['fashion_mnist_heads'], key=lambda r: HEAD_ROWS.index(r['name']))
  out['heads'] = table(heads, ['accuracy', 'recall@1', 'map@r', 'embedding_norm/median'],
                       label=head_label, paper=False, per_seed='accuracy')
  out['xi'] = table(by_grid['fashion_mnist_xi'],
                    ['accuracy', 'recall@1', 'map@r', 'embedding_norm/median'],
                    label=lambda r: f'xi = {r["overrides"]["model.xi"]:g}')
  out['features_2d'] = table(by_grid['fashion_mnist_2d'],
                             ['accuracy', 'recall@1', 'map@r', 'embedding_norm/median'], paper=False)
  for name, group in (('default', default), ('retrieval', by_grid['fashion_mnist_default_retrieval']),
                      ('heads', heads), ('xi', by_grid['fashion_mnist_xi']),
                      ('features_2d', by_grid['fashion_mnist_2d'])):
    out[name] += '\n\nRe-run with:\n\n' + commands(group)
  out.update(glyph_tables(by_grid['glyphs_default']))
  for study in studies.STUDIES:
    out.update(studies.tables(study))
  out['verdicts'] = '\n'.join(studies.headline(study) for study in studies.STUDIES)
  out['open_set_convergence'] = convergence_table()
  out['time_to_accuracy'] = time_to_accuracy.table()
  out['fast_recipe_search'] = time_to_accuracy.search_table()
  for grid in HISTORY:
    group = by_grid[grid]
    out[grid] = (table(group, ['accuracy', 'recall@1', 'recall@5', 'recall@10', 'precision@10',
                               'map@r']) +
                 f'\n\nMade at commit `{group[0]["commit"]}`; its grid pins only some fields, so '
                 'today\'s code re-runs it with another recipe.')
  return out


def convergence_table():
  """The open-set study's softmax and softmax + IS finals trained 20 epochs instead of 2, with
  test retrieval once per epoch: where the 2-epoch finals sit on the curve, and whether 20 epochs
  converge (the last quarter adds < 0.5 points)."""
  runs = load('fashion_mnist_open_set_convergence')
  if not runs:
    return 'No records yet.'
  study = studies.STUDIES[0]
  short = studies._finals(study)  # pylint: disable=protected-access
  head = ['method', 'seeds', 'test MAP@R, 2-epoch finals (the study)', 'after 2 of 20 epochs',
          'after 20 epochs', 'last quarter adds', 'test Recall@1 after 20 epochs']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for name, rs in runs.items():
    rs = [r for r in rs if 'metrics' in r]
    per_epoch = rs[0]['curve'][1]['step'] - rs[0]['curve'][0]['step']
    at_2 = [next(p['map@r'] for p in r['curve'] if p['step'] >= 2 * per_epoch) for r in rs]
    gains = [studies.last_quarter_gain(r['curve'], 'map@r') for r in rs]
    pm = lambda v: (f'{100 * v[0]:.2f}' if len(v) == 1 else
                    studies._pm(*studies.interval(v)))  # pylint: disable=protected-access
    lines.append(' | '.join([
        f'| {studies.METHODS[name]}', ','.join(str(r['seed']) for r in rs),
        pm([r['metrics']['map@r'] for r in short.get(name, [])]) if short.get(name) else '-',
        pm(at_2), pm([r['metrics']['map@r'] for r in rs]), pm(gains),
        pm([r['metrics']['recall@1'] for r in rs])]) + ' |')
  return '\n'.join(lines) + '\n\nRe-run with:\n\n    ' + command(
      'fashion_mnist_open_set_convergence')


def glyph_tables(group):
  """The glyphs baselines: closed set (all 155 classes, test fonts unseen) and open set (77
  classes trained, the 78 others scored), with and without IS; the open set's embedding spectrum
  beside FashionMNIST's (its studies' softmax finals, 5 classes trained)."""
  label = lambda r: ('softmax + IS (xi 100)' if r['config']['model']['inward_scale'] else 'softmax')
  closed = [r for r in group if r['name'].startswith('closed_set')]
  open_ = [r for r in group if r['name'].startswith('open_set')]
  spectrum = [SPECTRUM + 'participation_ratio', SPECTRUM + 'top4_share']
  out = {'glyphs_closed_set': table(closed, ['accuracy', 'recall@1', 'map@r', *spectrum,
                                             SPECTRUM + 'top154_share'],
                                    label=label, paper=False, per_seed='accuracy'),
         'glyphs_open_set': table(open_, ['recall@1', 'recall@10', 'map@r', *spectrum,
                                          SPECTRUM + 'top76_share'],
                                  label=label, paper=False, per_seed='map@r')}
  for name, rows_ in (('glyphs_closed_set', closed), ('glyphs_open_set', open_)):
    out[name] += '\n\nRe-run with:\n\n' + commands(rows_) if rows_ else ''
  lines = ['| FashionMNIST study, scored on | method | participation ratio | top-4 share | seeds |',
           '|---|---|---|---|---|']
  for study in ('fashion_mnist_closed_set', 'fashion_mnist_open_set'):
    for method, name in (('softmax', 'softmax (tuned)'), ('softmax_is', 'softmax + IS (tuned)')):
      ms = [r['metrics'] for r in studies._records(f'{study}_spectrum') if r['name'] == method]
      if ms:
        pr, top4 = ([m[SPECTRUM + k] for m in ms] for k in ('participation_ratio', 'top4_share'))
        lines.append(f'| {study.rsplit("_", 2)[-2]}-set test | {name} | '
                     f'{statistics.mean(pr):.2f} ± {statistics.stdev(pr):.2f} | '
                     f'{100 * statistics.mean(top4):.2f} ± {100 * statistics.stdev(top4):.2f} | '
                     f'{len(ms)} |')
  out['glyphs_fashion_mnist_spectrum'] = '\n'.join(lines)
  return out


def fill(markdown, blocks):
  """RESULTS.md with each `<!-- table:NAME -->` block replaced by blocks[NAME]."""
  out, lines, i = [], markdown.split('\n'), 0
  while i < len(lines):
    out.append(lines[i])
    if lines[i].startswith('<!-- table:'):
      name = lines[i][len('<!-- table:'):-len(' -->')]
      out += ['', blocks[name], '']
      while not lines[i].startswith('<!-- /table'):
        i += 1
      out.append(lines[i])
    i += 1
  return '\n'.join(out)


diff_marker = object()  # a value no config holds: a setting absent from a record


def stale_configs():
  """One line per record whose printed command resolves, today, to another config."""
  sys.path.insert(0, ROOT)
  import importlib  # noqa: E402
  from isx import runs as runs_lib  # noqa: E402  (isx is only needed here)
  problems = []
  for grid in CURRENT:
    entries = {e['name']: e for e in grid_entries(grid)}
    for records in load(grid).values():
      for r in records:
        where = f'{grid}/{r["name"]} seed {r["seed"]}'
        if r['name'] not in entries:
          problems.append(f'{where}: not in results/grids/{grid}.json')
          continue
        if 'config' not in r:
          problems.append(f'{where}: the record holds no config; move its grid to HISTORY')
          continue
        base = importlib.import_module('configs.' + GRID_CONFIG.get(grid, BASE_CONFIG))
        today = runs_lib.apply_overrides(base.get_config(),
                                         {'plots': False, **entries[r['name']]['overrides'],
                                          'seed': r['seed']})
        problems += config_problems(where, r['config'], today)
  return (problems + [p for study in studies.STUDIES
                     for p in studies.problems(study, config_problems)]
          + time_to_accuracy.problems(config_problems))


def config_problems(where, recorded, today) -> list:
  """The fields where a recorded config (in today's form, with nothing filled in from today's
  defaults) and today's resolution of its command differ, as one line; none when they agree."""
  from isx import config_checks, upgrade  # noqa: E402
  flat_saved = config_checks.flat(upgrade.config(recorded))
  flat_today = config_checks.flat(json.loads(today.to_json_best_effort()))
  compared = [k for k in sorted(set(flat_saved) | set(flat_today))
              if not (config_checks.may_differ(k) and k not in MUST_MATCH)]
  diff = [f'{k} ({flat_saved[k]!r} recorded, {flat_today.get(k)!r} today)' if k in flat_saved
          else f'{k} (not recorded; {flat_today[k]!r} today)'
          for k in compared if flat_saved.get(k, diff_marker) != flat_today.get(k)]
  return [f'{where}: ' + '; '.join(diff)] if diff else []


def figures():
  import matplotlib  # noqa: E402
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # noqa: E402
  import numpy as np  # noqa: E402

  time_to_accuracy.figure(plt, os.path.join(HERE, 'time_to_accuracy.png'))
  long_runs = {n: [r for r in rs if 'metrics' in r]
               for n, rs in load('fashion_mnist_open_set_convergence').items()}
  if long_runs:
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for (method, points), color in zip(studies.convergence(None, long_runs).items(), ('C0', 'C3')):
      steps, values = zip(*points)
      ax.plot(steps, [100 * v for v in values], 'o-', ms=3, color=color,
              label=f'{studies.METHODS[method]}, 20 epochs')
      short = [r['metrics']['map@r'] for r in studies._finals(studies.STUDIES[0]).get(method, [])]  # pylint: disable=protected-access
      if short:
        ax.plot([468], [100 * sum(short) / len(short)], 's', color=color, mfc='none', ms=8,
                label=f'{studies.METHODS[method]}, the study\'s 2-epoch final')
    ax.set(xlabel='train step (234 per epoch)', ylabel='test MAP@R, unseen classes 5-9')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, 'open_set_convergence.png'), dpi=120)
    plt.close(fig)
  for study in studies.STUDIES:
    curves = studies.convergence(study, studies._finals(study))  # pylint: disable=protected-access
    if study.table and curves:
      fig, ax = plt.subplots(figsize=(5.5, 3.4))
      for method, points in curves.items():
        ax.plot(*zip(*points), label=studies.METHODS[method],
                lw=2.5 if method in ('softmax', studies.IS_METHOD) else 1)
      ax.set(xlabel='train step', ylabel='test MAP@R (mean over seeds)')
      ax.legend(fontsize=6, ncol=2)
      fig.tight_layout()
      fig.savefig(os.path.join(HERE, f'{study.table}_convergence.png'), dpi=120)
      plt.close(fig)
  fig, ax = plt.subplots(figsize=(5.5, 3.4))
  runs = load('fashion_mnist_xi')
  if runs:
    points = sorted((r[0]['overrides']['model.xi'], r[0]['metrics']['accuracy'])
                    for r in runs.values() if 'metrics' in r[0])
    ax.plot(*zip(*points), 'o-', color='C0', label='default recipe, 10 epochs')
  paper = sorted((float(n[3:]), v['accuracy']) for n, v in PAPER_XI.items())
  ax.plot(*zip(*paper), 's:', color='k', label='paper (MNIST)')
  for grid, label, color in (('fashion_mnist_adamw', 'earlier recipe, AdamW 0.05', 'C1'),
                             ('fashion_mnist_l2', 'earlier recipe, L2 5e-4', 'C2')):
    runs = load(grid)
    xis = sorted(float(n[3:]) for n in runs if n.startswith('xi_'))
    accs = [runs[f'xi_{x:g}'][0]['metrics']['accuracy'] for x in xis]
    epochs = runs[f'xi_{xis[0]:g}'][0]['overrides']['num_epochs']
    ax.plot(xis, accs, '.--', color=color, alpha=0.5, label=f'{label}, {epochs} epochs')
  ax.set(xscale='log', xlabel='xi', ylabel='test accuracy', ylim=(0, 1),
         title='FashionMNIST (the paper: MNIST)')
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(os.path.join(HERE, 'xi_sweep.png'), dpi=90)
  plt.close(fig)

  for prefix, out, what in (('default_feat2d', 'features_2d.png', 'default recipe'),
                            ('adamw_feat2d', 'features_2d_earlier.png', 'earlier recipe')):
    paths = {n: os.path.join(HERE, 'raw', f'{prefix}_{n}_0.npz') for n in ('nois', 'is')}
    if not all(os.path.exists(p) for p in paths.values()):
      continue
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.3))
    for ax, (name, title) in zip(axes, (('nois', 'without IS'), ('is', 'with IS (xi = 100)'))):
      data = np.load(paths[name])
      emb, labels = data['embeddings'], data['labels']
      for c in range(10):
        pts = emb[labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=0.5, label=str(c), rasterized=True)
      ax.set_title(f'FashionMNIST test, 2-D embedding, {title} ({what})', fontsize=8)
      ax.set(xlabel='embedding, first dimension', ylabel='embedding, second dimension')
    axes[1].legend(markerscale=10, fontsize=7, loc='center left', bbox_to_anchor=(1, 0.5),
                   title='class')
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, out), dpi=90)
    plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--check', action='store_true', help='check only; write nothing')
  args = parser.parse_args()
  summary = [row for grid in (*CURRENT, *HISTORY) for row in rows(grid)]
  blocks = tables(summary)
  # RESULTS.md holds every block; README.md the ones it names (the studies' verdicts).
  docs = {}
  for name in ('RESULTS.md', 'README.md'):
    with open(os.path.join(ROOT, name)) as f:
      markdown = f.read()
    docs[name] = (markdown, fill(markdown, blocks))
  if args.check:
    problems = stale_configs()
    problems += [f'RESULTS.md: no <!-- table:{name} --> block for a generated table'
                 for name in blocks if f'<!-- table:{name} -->' not in docs['RESULTS.md'][0]]
    problems += [f'{name}: a generated table differs from the records; run '
                 'python results/make_report.py' for name, (old, new) in docs.items() if new != old]
    for p in problems:
      print(f'stale: {p}', file=sys.stderr)
    print(f'make_report --check: {len(problems)} problem(s)')
    return 1 if problems else 0
  with open(os.path.join(HERE, 'summary.json'), 'w') as f:
    json.dump([{k: v for k, v in row.items() if k != 'config'} for row in summary], f, indent=1)
  for name, (_, filled) in docs.items():
    with open(os.path.join(ROOT, name), 'w') as f:
      f.write(filled)
  figures()
  return 0


if __name__ == '__main__':
  sys.exit(main())
