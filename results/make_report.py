"""Turns the sweep records in results/raw/ into results/summary.json, the figures in results/,
and the markdown tables pasted into RESULTS.md (printed). Needs numpy and matplotlib only.

  python results/make_report.py
"""
import collections
import json
import os
import statistics

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = ('accuracy', 'recall@1', 'recall@5', 'recall@10', 'precision@1', 'precision@5',
        'precision@10', 'map@r')
PAPER = {  # the paper's numbers, as fractions (Table 2, Table 6, Appendix A on MNIST)
    'cls_is': {'accuracy': 0.9300}, 'cls_nois': {'accuracy': 0.8964},
    'default_is': {'accuracy': 0.9300}, 'default_nois': {'accuracy': 0.8964},
    'ret_is': {'recall@1': 0.8875, 'recall@5': 0.9588, 'recall@10': 0.9733,
               'precision@1': 0.8974, 'precision@5': 0.8990, 'precision@10': 0.9000},
    'ret_nois': {'recall@1': 0.8675, 'recall@5': 0.9563, 'recall@10': 0.9722,
                 'precision@1': 0.8670, 'precision@5': 0.8660, 'precision@10': 0.8560},
}
# The earlier grids ran the in-memory sweep of that time; later ones run train_and_evaluate per run.
EARLIER = 'python -m isx.sweep --config=configs/fashion_mnist_simplenet.py --npz=fashion_mnist.npz'
CURRENT = ('python -m isx.sweep --config=configs/fashion_mnist_simplenet.py '
           '--config.dataset.data_dir=DATA --out=OUT')
EARLIER_GRIDS = ('fashion_mnist_adamw', 'fashion_mnist_l2', 'fashion_mnist_one_epoch',
                 'fashion_mnist_warmup')


def load(name):
  runs = collections.defaultdict(list)
  with open(os.path.join(HERE, 'raw', f'{name}.jsonl')) as f:
    for line in f:
      record = json.loads(line)
      if 'metrics' in record or record.get('diverged'):
        runs[record['name']].append(record)
  return runs


def summarise(grid, runs, name):
  records = [r for r in runs[name] if 'metrics' in r]
  overrides = runs[name][0]['overrides']
  per_key = {k: [r['metrics'][k] for r in records] for k in KEYS}
  base = EARLIER if grid in EARLIER_GRIDS else CURRENT
  return {
      'experiment': f'{grid}/{name}',
      'command': f'{base} --grid=results/grids/{grid}.json --only={name}',
      'overrides': overrides,
      'epochs': overrides.get('num_epochs'),
      'seconds': [round(r.get('seconds', r['metrics'].get('train_seconds', 0))) for r in records],
      'seeds': sorted(r['seed'] for r in records),
      'device': records[0]['device'],
      'metrics': {k: statistics.mean(v) for k, v in per_key.items()},
      'std': {k: statistics.pstdev(v) for k, v in per_key.items()} if len(records) > 1 else None,
      'diverged': sorted(r['seed'] for r in runs[name]
                         if r.get('diverged') or not r['metrics'].get('finite', True)),
      'paper': PAPER.get(name),
  }


def pct(row, key):
  text = f'{100 * row["metrics"][key]:.2f}'
  if row['std']:
    text += f' ± {100 * row["std"][key]:.2f}'
  return text


def table(rows, keys):
  head = '| run | epochs | seeds | ' + ' | '.join(keys) + ' | paper |'
  lines = [head, '|' + '---|' * (len(keys) + 4)]
  for r in rows:
    paper = ', '.join(f'{k} {100 * v:.2f}' for k, v in (r['paper'] or {}).items()
                      if k in keys) or '-'
    lines.append(f'| {r["experiment"]} | {r["epochs"]} | {len(r["seeds"])} | ' +
                 ' | '.join(pct(r, k) for k in keys) + f' | {paper} |')
  return '\n'.join(lines)


def xi_figure(grids):
  fig, ax = plt.subplots(figsize=(5, 3.2))
  for grid, label in grids:
    runs = load(grid)
    xis = sorted(float(n[3:]) for n in runs if n.startswith('xi_'))
    accs = [runs[f'xi_{x:g}'][0]['metrics']['accuracy'] for x in xis]
    epochs = runs[f'xi_{xis[0]:g}'][0]['overrides']['num_epochs']
    ax.plot(xis, accs, 'o-', label=f'{label}, {epochs} epochs')
  ax.set(xscale='log', xlabel='xi', ylabel='FashionMNIST test accuracy', ylim=(0, 1))
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(os.path.join(HERE, 'xi_sweep.png'), dpi=90)
  plt.close(fig)


def feature_figure(prefix):
  fig, axes = plt.subplots(1, 2, figsize=(9, 4.3))
  for ax, (name, title) in zip(axes, (('nois', 'without IS'), ('is', 'with IS (xi = 100)'))):
    data = np.load(os.path.join(HERE, 'raw', f'{prefix}_feat2d_{name}_0.npz'))
    emb, labels = data['embeddings'], data['labels']
    for c in range(10):
      pts = emb[labels == c]
      ax.scatter(pts[:, 0], pts[:, 1], s=0.5, label=str(c), rasterized=True)
    ax.set_title(f'FashionMNIST test, 2-D embedding, {title}', fontsize=9)
  axes[1].legend(markerscale=10, fontsize=7, loc='center left', bbox_to_anchor=(1, 0.5))
  fig.tight_layout()
  fig.savefig(os.path.join(HERE, 'features_2d.png'), dpi=90)
  plt.close(fig)


def main():
  summary, sections = [], []
  for grid in ('fashion_mnist_default', 'fashion_mnist_default_retrieval', *EARLIER_GRIDS):
    runs = load(grid)
    with open(os.path.join(HERE, 'grids', f'{grid}.json')) as f:
      order = [entry['name'] for entry in json.load(f)]
    rows = [summarise(grid, runs, n) for n in order if n in runs]
    summary += rows
    sections.append(f'### {grid}\n\n' + table(rows, ['accuracy', 'recall@1', 'recall@5',
                                                       'recall@10', 'precision@10', 'map@r']))
  with open(os.path.join(HERE, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=1)
  xi_figure([('fashion_mnist_adamw', 'AdamW 0.05'), ('fashion_mnist_l2', 'L2 5e-4')])
  feature_figure('adamw')
  print('\n\n'.join(sections))


if __name__ == '__main__':
  main()
