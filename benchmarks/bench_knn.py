"""Benchmark isx exact k-NN against faiss-cpu IndexFlatL2 and scikit-learn brute force.

Methods: isx (isx.knn, float32 distances), isx_exact_bf16 and isx_exact_f32 (isx.knn_exact:
bfloat16 or float32 candidates, re-ranked in float64 with a proof per row; `fallback` gives the
rows each had to search again), faiss, sklearn. `isx_retrieval` names the search that retrieval
runs on this host (isx.knn_exact.candidate_dtype).

All three run on the same seeded float32 data in one process, interleaved
(one call of each per repeat) after a warm-up call, and the median wall time
is reported. Each timed call returns the [Q, k] neighbour indices as a numpy
array; data placement is not timed: isx gets arrays already on the JAX device,
faiss a built `IndexFlatL2` (`search` only), scikit-learn a fitted
`NearestNeighbors(algorithm='brute')` (`kneighbors` only).

Answers: neighbour *sets* per query are compared against faiss and
scikit-learn, and every method's ordered lists against float64 on --float64_rows sampled
queries (`float64_identical`: rows equal to float64's order, ties by lower index). Differing rows are classified with float64 distances: an
"exact tie" row differs only in items whose float64 distance equals the k-th
neighbour's; a "near tie" row only in items within a relative 1e-5 of it
(float32 rounding); anything else is an error. `identical` is true when every
differing row is an exact tie.

Memory: for each method a fresh subprocess makes the data, runs one warm-up
call, returns freed heap to the OS (malloc_trim), resets the kernel's peak-RSS
mark (/proc/self/clear_refs) and runs one more call; "peak_extra_mib" is peak
RSS during that call minus RSS just before it, i.e. the steady-state working
memory of one search (outputs included; compilation excluded). Linux only.

Usage:
  python benchmarks/bench_knn.py                # table
  python benchmarks/bench_knn.py --json         # one JSON object
  python benchmarks/bench_knn.py --data clustered --block_size 2048
"""

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

# Lets the script run from a checkout without installing isx.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

METHODS = ('isx', 'isx_exact_bf16', 'isx_exact_f32', 'faiss', 'sklearn')


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--num_queries', type=int, default=10_000)
  p.add_argument('--num_gallery', type=int, default=60_000)
  p.add_argument('--dim', type=int, default=128)
  p.add_argument('--k', type=int, default=10)
  p.add_argument('--block_size', type=int, default=1024)
  p.add_argument('--repeats', type=int, default=5)
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--data', choices=('gaussian', 'clustered'), default='gaussian',
                 help='gaussian: i.i.d. N(0,1); clustered: 100 N(0,1) centres + N(0, 0.3^2) noise')
  p.add_argument('--skip_sklearn', action='store_true')
  p.add_argument('--skip_exact', action='store_true', help='skip the isx_exact_* methods')
  p.add_argument('--float64_rows', type=int, default=500,
                 help='queries checked against a float64 brute force, per method')
  p.add_argument('--no_memory', action='store_true', help='skip the per-method memory subprocesses')
  p.add_argument('--cpu_conv_path', choices=('auto', 'ynnpack', 'xla'), default=None,
                 help='XLA:CPU setup, whose YNNPACK fusions also cover dots: default '
                      "$ISX_CPU_CONV_PATH, else auto, what isx.main chooses for the default "
                      'FashionMNIST SimpleNet run on this host')
  p.add_argument('--json', action='store_true', help='print one JSON object instead of a table')
  p.add_argument('--memory_probe', choices=METHODS, help=argparse.SUPPRESS)
  return p.parse_args(argv)


def make_data(args):
  rng = np.random.default_rng(args.seed)
  n = args.num_queries + args.num_gallery
  if args.data == 'gaussian':
    x = rng.standard_normal((n, args.dim), dtype=np.float32)
  else:
    centres = rng.standard_normal((100, args.dim), dtype=np.float32)
    x = centres[rng.integers(0, 100, n)] + 0.3 * rng.standard_normal((n, args.dim), dtype=np.float32)
  return x[: args.num_queries], x[args.num_queries :]


def make_search(method, queries, gallery, args):
  """Returns a no-argument callable running one full search -> indices [Q, k]."""
  if method == 'isx':
    import jax
    from isx.knn import knn
    # Like faiss's index.add / sklearn's fit, placing the data is not timed.
    queries, gallery = jax.device_put(queries), jax.device_put(gallery)

    def run():
      return np.asarray(knn(queries, gallery, args.k, block_size=args.block_size)[1])
  elif method.startswith('isx_exact'):
    from isx.knn_exact import exact_knn
    dtype = 'bfloat16' if method.endswith('bf16') else 'float32'
    fallback = {}

    def run():
      _, idx, stats = exact_knn(queries, gallery, args.k, dtype=dtype, block_size=args.block_size)
      fallback.update(stats)
      return idx
    run.fallback = fallback
  elif method == 'faiss':
    import faiss
    index = faiss.IndexFlatL2(gallery.shape[1])
    index.add(gallery)

    def run():
      return index.search(queries, args.k)[1]
  else:
    from sklearn.neighbors import NearestNeighbors
    nn = NearestNeighbors(n_neighbors=args.k, algorithm='brute').fit(gallery)

    def run():
      return nn.kneighbors(queries, return_distance=False)
  return run


def _rss_kib(field):
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith(field + ':'):
        return int(line.split()[1])
  raise RuntimeError(f'{field} not in /proc/self/status')


def memory_probe(args):
  """Runs in a subprocess: prints the steady-state peak extra RSS (MiB) of one call."""
  queries, gallery = make_data(args)
  run = make_search(args.memory_probe, queries, gallery, args)
  run()
  ctypes.CDLL('libc.so.6').malloc_trim(0)
  with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')  # reset VmHWM (peak RSS) to the current RSS
  before = _rss_kib('VmRSS')
  run()
  print(json.dumps((_rss_kib('VmHWM') - before) / 1024))


def measure_memory(method, argv):
  out = subprocess.run([sys.executable, os.path.abspath(__file__), *argv, '--memory_probe', method],
                       check=True, capture_output=True, text=True).stdout
  return json.loads(out.strip().splitlines()[-1])


def compare(other_idx, isx_idx, queries, gallery, k):
  """Counts rows whose neighbour sets differ, classified by float64 distances.

  For each differing row also records which side has the float64-exact set
  (stable sort, ties by lower index).
  """
  counts = {'rows_differ': 0, 'exact_tie': 0, 'near_tie': 0, 'error': 0,
            'isx_matches_float64': 0, 'other_matches_float64': 0}
  for row in np.flatnonzero([set(a) != set(b) for a, b in zip(other_idx, isx_idx)]):
    d = np.sum((gallery.astype(np.float64) - queries[row].astype(np.float64)) ** 2, axis=1)
    truth = set(np.argsort(d, kind='stable')[:k])
    kth = np.sort(d)[k - 1]
    diff = np.array(sorted(set(other_idx[row]) ^ set(isx_idx[row])))
    gap = np.max(np.abs(d[diff] - kth))
    counts['rows_differ'] += 1
    counts['exact_tie' if gap == 0 else 'near_tie' if gap <= 1e-5 * kth else 'error'] += 1
    counts['isx_matches_float64'] += set(isx_idx[row]) == truth
    counts['other_matches_float64'] += set(other_idx[row]) == truth
  return counts


def float64_identity(answers, queries, gallery, args) -> dict:
  """Per method, the fraction of --float64_rows sampled queries whose ordered neighbour list
  equals float64's (stable sort: ties by lower index)."""
  rows = np.random.default_rng(args.seed).choice(len(queries), min(args.float64_rows,
                                                                   len(queries)), replace=False)
  g64 = gallery.astype(np.float64)
  ref = np.stack([np.argsort(np.sum((g64 - queries[r].astype(np.float64)) ** 2, 1),
                             kind='stable')[: args.k] for r in rows])
  return {m: float(np.mean(np.all(np.asarray(a)[rows] == ref, axis=1))) for m, a in answers.items()}


def set_up_cpu(args):
  """The XLA:CPU setup isx.main starts the default recipe with (isx.cpu_setup), on one device:
  the search runs on one, as in this benchmark's isx call."""
  from configs import fashion_mnist_simplenet
  from isx import cpu_setup
  return cpu_setup.set_up(fashion_mnist_simplenet.get_config(), (28, 28, 1), 10,
                          args.cpu_conv_path, devices=1,
                          log=lambda m: print(m, file=sys.stderr, flush=True))


def main():
  args = parse_args()
  setup = set_up_cpu(args)
  if args.memory_probe:
    memory_probe(args)
    return
  queries, gallery = make_data(args)
  methods = [m for m in METHODS if not (m == 'sklearn' and args.skip_sklearn)
             and not (m.startswith('isx_exact') and args.skip_exact)]
  runs = {m: make_search(m, queries, gallery, args) for m in methods}
  answers = {m: runs[m]() for m in methods}  # warm-up (includes isx compilation)
  times = {m: [] for m in methods}
  for _ in range(args.repeats):
    for m in methods:
      start = time.perf_counter()
      runs[m]()
      times[m].append(time.perf_counter() - start)

  import faiss
  import jax
  import sklearn
  result = {f'{m}_s': statistics.median(times[m]) for m in methods}
  result.setdefault('sklearn_s', None)
  result['ratio'] = result['isx_s'] / result['faiss_s']
  for m in methods:
    if m.startswith('isx_exact'):
      result[f'ratio_{m}'] = result[m + '_s'] / result['faiss_s']
  checks = {m: compare(answers[m], answers['isx'], queries, gallery, args.k) for m in methods if m != 'isx'}
  result['identical'] = all(c['rows_differ'] == c['exact_tie'] for m, c in checks.items()
                            if not m.startswith('isx_exact'))
  result['identical_vs_faiss'] = checks['faiss']['rows_differ'] == checks['faiss']['exact_tie']
  result['vs'] = checks
  result['order_identical_vs_faiss'] = bool(np.array_equal(answers['faiss'], answers['isx']))
  result['times_s'] = times
  result['fallback'] = {m: dict(getattr(runs[m], 'fallback', {})) for m in methods
                        if m.startswith('isx_exact')}
  result['float64_identical'] = float64_identity(answers, queries, gallery, args)
  from isx import knn_exact
  result['isx_retrieval'] = knn_exact.candidate_dtype()
  if not args.no_memory:
    argv = sys.argv[1:]
    result['peak_extra_mib'] = {m: measure_memory(m, argv) for m in methods}
  result['config'] = {
      **{key: getattr(args, key) for key in ('num_queries', 'num_gallery', 'dim', 'k', 'block_size',
                                              'repeats', 'seed', 'data')},
      'cpu_count': os.cpu_count(), 'faiss_threads': faiss.omp_get_max_threads(),
      'cpu_setup': setup.record(),
      'versions': {'jax': jax.__version__, 'faiss': faiss.__version__, 'sklearn': sklearn.__version__},
  }
  if args.json:
    print(json.dumps(result))
    return
  c = result['config']
  print(f"exact k-NN, {c['num_queries']} queries x {c['num_gallery']} gallery, D={c['dim']}, k={c['k']}, "
        f"{c['data']} data, block_size={c['block_size']}, {c['cpu_count']} CPUs, median of {c['repeats']}")
  print(f"{'method':<16}{'median s':>10}{'min s':>10}{'peak extra MiB':>16}  answers vs isx")
  for m in methods:
    mem = result.get('peak_extra_mib', {}).get(m)
    check = 'reference' if m == 'isx' else ', '.join(f'{key}={val}' for key, val in checks[m].items())
    print(f"{m:<16}{result[m + '_s']:>10.3f}{min(times[m]):>10.3f}"
          f"{'-' if mem is None else f'{mem:.1f}':>16}  {check}")
  print('rows equal to float64 (sampled): ' + ', '.join(
      f'{m} {v:.4f}' for m, v in result['float64_identical'].items()))
  for m, stats in result['fallback'].items():
    print(f"{m}: ratio to faiss {result['ratio_' + m]:.3f}, fallback rows {stats}")
  print(f"retrieval's search on this host: {result['isx_retrieval']}")
  print(f"ratio isx/faiss = {result['ratio']:.3f}; identical (all differing rows are exact ties) = "
        f"{result['identical']} (vs faiss: {result['identical_vs_faiss']}); "
        f"same order as faiss = {result['order_identical_vs_faiss']}")


if __name__ == '__main__':
  main()
