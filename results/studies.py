"""The tuned studies (Musgrave et al. 2020's protocol) from their records: isx.tune's trials
(results/raw/STUDY_trials.jsonl) and the finals that isx.sweep ran from the tuner's best grid
(results/grids/STUDY.json, records in results/raw/STUDY.jsonl), where STUDY names the config
(configs/STUDY.py) and the space (results/spaces/STUDY.json). make_report.py writes each study's
tables and --check runs problems()."""
import collections
import importlib
import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# test: {metric key: its column name}; collapse: the directions that separate the training
# classes' means (their number less one), whose share of the embedding's variance the spectrum
# table gives.
# table: the name of its RESULTS.md blocks (default: the name less 'fashion_mnist_').
Study = collections.namedtuple('Study', 'name test collapse table', defaults=(None,))
STUDIES = (Study('fashion_mnist_open_set', {'map@r': 'MAP@R', 'recall@1': 'Recall@1'}, 4),
           Study('fashion_mnist_closed_set',
                 {'accuracy': 'accuracy', 'map@r': 'MAP@R', 'recall@1': 'Recall@1'}, 9),
           Study('glyphs_open_set', {'map@r': 'MAP@R', 'recall@1': 'Recall@1',
                                     'features/map@r': 'features MAP@R',
                                     'features/recall@1': 'features Recall@1'}, 76,
                 'glyphs_tuned'))
METHODS = {'softmax': 'softmax', 'softmax_is': 'softmax + IS', 'l2_softmax': 'L2-softmax',
           'normface': 'NormFace', 'cosface': 'CosFace', 'arcface': 'ArcFace',
           'center': 'softmax + center loss', 'center_is': 'softmax + IS + center loss',
           'contrastive': 'softmax + contrastive', 'contrastive_is': 'softmax + IS + contrastive'}
PARAMS = {'learning_rate': 'lr', 'weight_decay': 'wd', 'model.xi': 'xi', 'model.head.scale': 's',
          'model.head.margin': 'm', 'loss.center.weight': 'center weight',
          'loss.contrastive.weight': 'contrastive weight',
          'loss.contrastive.margin': 'contrastive margin'}
IS_METHOD = 'softmax_is'  # the paper's method, against the best tuned method without IS
# What each study asks, as its verdict line (headline) names it.
QUESTIONS = {'fashion_mnist_open_set': 'Unseen classes, FashionMNIST (5 training classes)',
             'fashion_mnist_closed_set': 'The classes it trained on, FashionMNIST (10 classes)',
             'glyphs_open_set': 'Unseen classes, glyphs (77 training classes)'}


def _records(name):
  path = os.path.join(HERE, 'raw', f'{name}.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f]


def _space_path(study):
  return f'results/spaces/{study.name}.json'


def space(study):
  with open(os.path.join(ROOT, _space_path(study))) as f:
    return json.load(f)


def counted_trials(trials, budget) -> dict:
  """{method: its first `budget` finished trials, by trial number}: the ones that count (a
  worker that started a trial beside another may finish one more, which does not). A trial
  killed after it wrote its record was retried: only the retry's record (`retry_of`) counts."""
  latest = {}
  for r in trials:
    key = (r['study'], r.get('retry_of', r['trial']))
    if key not in latest or r['trial'] > latest[key]['trial']:
      latest[key] = r
  by_method = {}
  for r in sorted(latest.values(), key=lambda r: (r['study'], r['trial'])):
    by_method.setdefault(r['study'], []).append(r)
  return {m: rs[:budget] for m, rs in by_method.items()}


def best(trials):
  """The best counted trial: the highest value, the lower trial number on a tie."""
  scored = [r for r in trials if r.get('value') is not None]
  return max(scored, key=lambda r: (r['value'], -r['trial'])) if scored else None


def t_cdf(x, df, n=2000):
  """Student's t CDF at x >= 0, its density integrated by Simpson's rule."""
  const = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
  pdf = lambda t: const * (1 + t * t / df) ** (-(df + 1) / 2)
  h = x / n
  inner = sum((4 if i % 2 else 2) * pdf(i * h) for i in range(1, n))
  return 0.5 + h / 3 * (pdf(0) + inner + pdf(x))


def t_quantile(p, df):
  """Student's t quantile (p > 0.5) by bisection on the CDF."""
  lo, hi = 0.0, 1000.0
  for _ in range(60):
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
  return (lo + hi) / 2


def interval(values):
  """(mean, half-width of the t-based 95% interval) over the seeds."""
  mean = statistics.mean(values)
  if len(values) < 2:
    return mean, float('nan')
  return mean, t_quantile(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(
      len(values))


def difference(a, b):
  """(mean(a) - mean(b), half-width of Welch's t-based 95% interval)."""
  return welch(a, b)[:2]


def welch(a, b):
  """(mean(a) - mean(b), half-width of Welch's t-based 95% interval, two-sided p-value)."""
  va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
  df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
  d, se = statistics.mean(a) - statistics.mean(b), math.sqrt(va + vb)
  return d, t_quantile(0.975, df) * se, 2 * (1 - t_cdf(abs(d) / se, df))


def holm(pvalues, alpha=0.05) -> list:
  """Which of a family of hypotheses Holm's step-down procedure rejects at family-wise alpha."""
  order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
  rejected = [False] * len(pvalues)
  for rank, i in enumerate(order):
    if pvalues[i] > alpha / (len(pvalues) - rank):
      break
    rejected[i] = True
  return rejected


def edge(value, spec, within=0.1):
  """'low' or 'high' when a tuned value lies within `within` of its range's width from that end
  (on the log scale for a log range): the optimum may lie outside the range. None inside, and
  for choices."""
  if not isinstance(spec, dict) or 'low' not in spec:
    return None
  scale = math.log if spec.get('log') else (lambda v: v)
  low, high = scale(spec['low']), scale(spec['high'])
  position = (scale(value) - low) / (high - low) if high > low else 0.5
  return 'low' if position <= within else 'high' if position >= 1 - within else None


def _ranks(values):
  """Ranks from 1, ties given their mean rank."""
  order = sorted(range(len(values)), key=lambda i: values[i])
  ranks = [0.0] * len(values)
  i = 0
  while i < len(order):
    j = i
    while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
      j += 1
    for k in range(i, j + 1):
      ranks[order[k]] = (i + j) / 2 + 1
    i = j + 1
  return ranks


def spearman(xs, ys):
  """Spearman's rank correlation (Pearson's on the ranks); None below 3 pairs or for a
  constant side."""
  if len(xs) < 3:
    return None
  rx, ry = _ranks(list(xs)), _ranks(list(ys))
  mx, my = statistics.fmean(rx), statistics.fmean(ry)
  sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
  sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
  return sxy / math.sqrt(sxx * syy) if sxx and syy else None


def _pm(mean, half):
  return f'{100 * mean:.2f} ± {100 * half:.2f}'


def _finals(study):
  by_method = {}
  for r in _records(study.name):
    if 'metrics' in r:
      by_method.setdefault(r['name'], {})[r['seed']] = r  # a resumed run's record repeats
  return {m: [rs[s] for s in sorted(rs)] for m, rs in by_method.items()}


def tables(study) -> dict:
  """{study: its table, study_difference: IS against the best tuned baseline}."""
  trials, finals = _records(f'{study.name}_trials'), _finals(study)
  name = study.table or study.name.replace('fashion_mnist_', '')
  running = {f'{name}_progress': progress(study)} if study.table else {}
  if not trials:
    parts = ('', '_difference', '_spectrum') + (('_convergence',) if study.table else ())
    return {**{f'{name}{part}': 'No records yet.' for part in parts}, **running}
  sp = space(study)
  counted = counted_trials(trials, sp['trials'])
  head = ['method', 'tuned (best of its trials)', 'trials', 'validation MAP@R: defaults, tuned',
          *(f'test {label}' for label in study.test.values()), 'seeds']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  at_edges, num_tuned, selected = 0, 0, {}
  for method in [m for m in METHODS if m in counted]:
    top = best(counted[method])
    default = next((r for r in counted[method] if r.get('defaults')), None)
    runs = finals.get(method, [])
    specs = sp['methods'][method].get('params', {})
    shown = []
    for k, v in top['params'].items():
      end = edge(v, specs.get(k))
      at_edges, num_tuned = at_edges + bool(end), num_tuned + ('low' in (specs.get(k) or {}))
      shown.append(f'{PARAMS.get(k, k)} {v:.3g}' + (f' (**{end} end**)' if end else ''))
    tuned = ', '.join(shown)
    if runs:
      selected[method] = (top['value'], statistics.fmean(r['metrics'][sp['objective']]
                                                         for r in runs))
    test = [_pm(*interval([r['metrics'][k] for r in runs])) if runs else '-' for k in study.test]
    lines.append(f'| {METHODS[method]} | {tuned} | {len(counted[method])} | '
                 f'{100 * default["value"]:.2f}, {100 * top["value"]:.2f} | {" | ".join(test)} | '
                 f'{",".join(str(r["seed"]) for r in runs) or "-"} |')
  rho = spearman(*zip(*selected.values())) if selected else None
  objective = study.test.get(sp['objective'], sp['objective'])
  lines += ['', f'{at_edges} of {num_tuned} values tuned over a range lie within 10% of a range end (of its '
            f'width, on the log scale for a log range), marked: the optimum may lie beyond it. '
            f'Selection against the test: Spearman rank correlation of the methods\' best '
            f'validation {objective} and their finals\' mean test {objective}, over '
            f'{len(selected)} methods: ' + ('-' if rho is None else f'**{rho:+.2f}**') + '.']
  base = f'python -m isx.{{}} --config=configs/{study.name}.py --config.dataset.data_dir=DATA'
  lines += ['', 'Tune (any number of workers, e.g. launch/tune_array.sh), then the finals:', '',
            '    ' + base.format('tune') + f' --space={_space_path(study)} --out=OUT',
            '    ' + base.format('sweep') + f' --grid=results/grids/{study.name}.json --out=FINALS']
  return {name: '\n'.join(lines), f'{name}_difference': _difference_table(study, finals),
          f'{name}_spectrum': _spectrum_table(study, finals),
          **({f'{name}_convergence': _convergence_table(study, finals)} if study.table else {}),
          **running}


def in_progress(study) -> str:
  """The folder of a study still running in chunks: its Optuna storage and trial records."""
  return f'results/studies_in_progress/{study.name}'


def progress(study) -> str:
  """How far the study's trials are: from results/raw when it is done, else from the records of
  the chunks run so far (in_progress)."""
  budget, methods = space(study)['trials'], space(study)['methods']
  done = _records(f'{study.name}_trials')
  where = f'results/raw/{study.name}_trials.jsonl'
  if not done:
    folder = os.path.join(ROOT, in_progress(study))
    names = sorted(n for n in os.listdir(folder) if n.startswith('trials_')) if os.path.isdir(
        folder) else []
    for n in names:
      with open(os.path.join(folder, n)) as f:
        done += [json.loads(line) for line in f]
    where = f'{in_progress(study)}/, with the study\'s Optuna storage (studies.db)'
  counted = counted_trials(done, budget)
  total = sum(len(counted.get(m, [])) for m in methods)
  per = ', '.join(f'{METHODS[m]} {len(counted.get(m, []))}' for m in methods)
  return f'Trials finished: {total} of {budget * len(methods)} ({per}); records in {where}.'


def last_quarter_gain(curve, key):
  """What the last quarter of a run's steps added to `key` on its eval curve (the value at the
  end less the value at the latest point no later than 3/4 of the steps); None without two
  such points."""
  points = [p for p in curve if key in p]
  if len(points) < 2:
    return None
  end = points[-1]
  earlier = [p for p in points if p['step'] <= 0.75 * end['step']]
  return end[key] - earlier[-1][key] if earlier else None


def convergence(study, finals, key='map@r') -> dict:
  """{method: [(step, mean over seeds of key)]} from the finals' recorded curves."""
  out = {}
  for method, runs in finals.items():
    curves = [{p['step']: p[key] for p in r.get('curve', []) if key in p} for r in runs]
    steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    if len(steps) >= 2:
      out[method] = [(s, statistics.fmean(c[s] for c in curves)) for s in steps]
  return out


def _convergence_table(study, finals):
  """Per method: how much the last quarter of the finals' steps added to test MAP@R and
  Recall@1 (the bar: < 0.5 points for a converged schedule), mean and 95% interval over seeds."""
  rows = []
  for method in [m for m in METHODS if m in finals]:
    cells = []
    for key in ('map@r', 'recall@1'):
      gains = [g for r in finals[method] if (g := last_quarter_gain(r.get('curve', []), key))
               is not None]
      cells.append(_pm(*interval(gains)) if gains else '-')
    if any(c != '-' for c in cells):
      points = max(len(r.get('curve', [])) for r in finals[method])
      rows.append(f'| {METHODS[method]} | {" | ".join(cells)} | {points} |')
  if not rows:
    return 'No curves yet.'
  head = '| method | last quarter adds to test MAP@R | to Recall@1 | points on the curve |'
  return '\n'.join([head, '|---|---|---|---|', *rows])


def _spectrum_table(study, finals):
  """Per method, over its finals' seeds: how many directions the test embedding uses
  (isx/evals/embedding_spectrum.py, scored from the finals' saved embeddings by
  results/score_embeddings.py)."""
  by_method = {}
  for r in _records(f'{study.name}_spectrum'):
    by_method.setdefault(r['name'], []).append(r['metrics'])
  if not by_method:
    return 'No records yet.'
  k = study.collapse
  head = ['method', 'participation ratio', 'top-2 share', f'top-{k} share', 'test MAP@R', 'seeds']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for method in [m for m in METHODS if m in by_method]:
    ms = by_method[method]
    pr = interval([m['embedding_spectrum/participation_ratio'] for m in ms])
    shares = [_pm(*interval([m[f'embedding_spectrum/top{n}_share'] for m in ms])) for n in (2, k)]
    test = [r['metrics']['map@r'] for r in finals.get(method, [])]
    lines.append(f'| {METHODS[method]} | {pr[0]:.2f} ± {pr[1]:.2f} | {shares[0]} | {shares[1]} | '
                 f'{_pm(*interval(test)) if test else "-"} | {len(ms)} |')
  lines += ['', 'Scored from the finals\' saved test embeddings:', '',
            f'    python results/score_embeddings.py --runs=FINALS '
            f'--out=results/raw/{study.name}_spectrum.jsonl']
  return '\n'.join(lines)


def verdicts(study, finals) -> dict:
  """The declared comparisons: softmax + IS against each tuned method without IS, one by one, on
  each test metric. {(method, key): (difference, half-width, p, verdict)}; the verdict word
  comes from Holm's procedure over the study's comparisons of one metric (family-wise 5%)."""
  baselines = [m for m in METHODS if 'is' not in m.split('_') and m in finals]
  if IS_METHOD not in finals or not baselines:
    return {}
  out = {}
  for key in study.test:
    values = {m: [r['metrics'][key] for r in finals[m]] for m in finals}
    tests = {m: welch(values[IS_METHOD], values[m]) for m in baselines}
    rejected = dict(zip(tests, holm([p for _, _, p in tests.values()])))
    for m, (d, half, p) in tests.items():
      word = ('better' if d > 0 else 'worse') if rejected[m] else 'no difference'
      out[m, key] = (d, half, p, word)
  return out


def headline(study) -> str:
  """The study's answer as one Markdown list item, generated from its verdicts: per test metric,
  which declared comparisons came out better, worse or without a difference."""
  finals = _finals(study)
  found = verdicts(study, finals)
  if not found:
    return (f'- **{QUESTIONS[study.name]}**: not answered yet, no finals on record '
            f'(results/raw/{study.name}.jsonl).')
  against = list(dict.fromkeys(m for m, _ in found))
  seeds = sorted({len(finals[m]) for m in [IS_METHOD, *against]})
  parts = []
  for key, label in study.test.items():
    by_word = {w: [METHODS[m] for m in against if found[m, key][3] == w]
               for w in ('better', 'worse', 'no difference')}
    said = [f'{w} than {_names(by_word[w], len(against))}' for w in ('better', 'worse')
            if by_word[w]]
    if by_word['no difference']:
      said.append('no difference with ' + _names(by_word['no difference'], len(against), said))
    parts.append(f'{label} {", ".join(said)}')
  return (f'- **{QUESTIONS[study.name]}**: softmax + IS against {len(against)} tuned methods '
          f'without IS ({"/".join(map(str, seeds))} seeds; Welch, Holm at family-wise 5%): '
          + '; '.join(parts) + '.')


def _names(names, total, others=()):
  """'all 7', the names themselves (up to 3), or 'the other 5' after others were named."""
  if len(names) == total:
    return f'all {total}'
  if len(names) <= 3:
    return ' and '.join(names)
  return f'the other {len(names)}' if others else f'{len(names)} of {total}'


def _difference_table(study, finals):
  found = verdicts(study, finals)
  if not found:
    return 'No finals yet.'
  keys = list(study.test)
  head = ['softmax + IS against', *(f'{study.test[k]}: difference [95% interval], p, verdict'
                                    for k in keys)]
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for m in dict.fromkeys(m for m, _ in found):
    cells = []
    for k in keys:
      d, half, p, word = found[m, k]
      cells.append(f'{100 * d:+.2f} [{100 * (d - half):+.2f}, {100 * (d + half):+.2f}], '
                   f'p {p:.2g}, **{word}**')
    lines.append(f'| {METHODS[m]} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def problems(study, config_problems) -> list:
  """--check (config_problems: make_report's comparison of a recorded config): each trial's
  overrides are its method's, the trials' and its parameters, and resolve today to the config it
  recorded; the finals grid holds each method's best counted trial; each final's config is what
  that grid resolves to."""
  trials = _records(f'{study.name}_trials')
  if not trials:
    return []
  sys.path.insert(0, ROOT)
  from isx import runs as runs_lib  # noqa: E402
  sp, out = space(study), []
  base = importlib.import_module(f'configs.{study.name}').get_config()
  for r in trials:
    where = f'{study.name} trial {r["study"]}/{r["trial"]}'
    method = sp['methods'].get(r['study'])
    want = method and {**method.get('overrides', {}), **sp['trial_overrides'], **r['params']}
    if want != r['overrides']:
      out.append(f'{where}: its overrides are not those of {_space_path(study)} and its '
                 'parameters')
      continue
    today = runs_lib.apply_overrides(base, {'plots': False, **r['overrides'], 'seed': r['seed']})
    out += config_problems(where, r['config'], today)
  with open(os.path.join(HERE, 'grids', f'{study.name}.json')) as f:
    grid = {e['name']: e for e in json.load(f)}
  for method, counted in counted_trials(trials, sp['trials']).items():
    top, entry = best(counted), grid.get(method)
    want = {**sp['methods'][method].get('overrides', {}), **top['params'],
            **sp['final_overrides']}
    if entry is None or entry['overrides'] != want:
      out.append(f'{study.name} grid: {method} is not its best trial ({top["trial"]})')
  spectra = {(r['name'], r['seed']) for r in _records(f'{study.name}_spectrum')}
  finished = {(r['name'], r['seed']) for runs in _finals(study).values() for r in runs}
  if spectra and spectra != finished:
    out.append(f'{study.name}_spectrum: its runs {sorted(spectra ^ finished)} are not both '
               f'finals and scored; run results/score_embeddings.py on the finals again')
  for method, runs in _finals(study).items():
    for r in runs:
      today = runs_lib.apply_overrides(base, {'plots': False, **grid[method]['overrides'],
                                              'seed': r['seed']})
      out += config_problems(f'{study.name}/{method} seed {r["seed"]}', r['config'], today)
  return out + defaults_problems(study, trials)


def defaults_problems(study, trials=None) -> list:
  """Each method's recorded defaults trial (the table's "defaults" column) against the one
  isx.tune would enqueue today: a plug-in's default that moved (a head's scale) changes what a
  study means by "defaults", and its records no longer say what a re-run would."""
  trials = _records(f'{study.name}_trials') if trials is None else trials
  sp = space(study)
  if not trials or not sp.get('enqueue_defaults'):
    return []
  sys.path.insert(0, ROOT)
  from isx import space as space_lib  # noqa: E402
  base = importlib.import_module(f'configs.{study.name}').get_config()
  out = []
  for method, counted in counted_trials(trials, sp['trials']).items():
    recorded = [r for r in counted if r.get('defaults')]
    today = space_lib.default_params(base, sp, method)
    if len(recorded) != 1:
      out.append(f'{study.name} {method}: {len(recorded)} counted trials are marked as its '
                 f'defaults; the "defaults" column needs exactly one')
    elif recorded[0]['params'] != today:
      out.append(f'{study.name} {method}: its defaults trial ({recorded[0]["trial"]}) ran '
                 f'{recorded[0]["params"]}, but isx.tune would enqueue {today} today (a '
                 f'default moved); restore the default or run the study again')
  return out
