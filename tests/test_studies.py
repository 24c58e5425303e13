"""results/studies.py: the tuned studies' statistics and the trials that count."""
import importlib.util
import math
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location('studies', ROOT / 'results' / 'studies.py')
studies = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(studies)


@pytest.mark.parametrize('df,want', [(2, 4.3027), (4, 2.7764), (30, 2.0423)])
def test_t_quantile_matches_the_tables(df, want):
  assert studies.t_quantile(0.975, df) == pytest.approx(want, abs=2e-4)


def test_interval_is_the_t_half_width_over_the_seeds():
  mean, half = studies.interval([0.90, 0.92, 0.94])
  assert mean == pytest.approx(0.92)
  assert half == pytest.approx(4.3027 * 0.02 / math.sqrt(3), rel=1e-4)
  assert math.isnan(studies.interval([0.5])[1])


def test_welch_difference_of_equal_samples_is_zero_and_its_interval_covers_it():
  d, half = studies.difference([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
  assert d == pytest.approx(0.0) and half > 0


def test_welch_p_value_matches_scipys_unequal_variance_t_test():
  from scipy import stats
  a, b = [0.259, 0.221, 0.299], [0.375, 0.36, 0.39]
  _, _, p = studies.welch(a, b)
  assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-3)


def test_holm_rejects_step_down_and_stops_at_the_first_it_keeps():
  # sorted: 0.001 <= 0.05/4, 0.011 <= 0.05/3, 0.03 > 0.05/2: stop; 0.04 kept though <= 0.05/1
  assert studies.holm([0.03, 0.001, 0.04, 0.011]) == [False, True, False, True]
  assert studies.holm([0.013] * 7) == [False] * 7  # each alone would pass at 5%


def test_a_tuned_value_near_a_range_end_is_flagged_on_the_ranges_scale():
  lr = {'low': 1e-3, 'high': 1e-1, 'log': True}  # log scale: 10% of the width is a factor 1.585
  assert studies.edge(1e-3, lr) == studies.edge(1.5e-3, lr) == 'low'
  assert studies.edge(1.7e-3, lr) is None and studies.edge(1e-2, lr) is None
  assert studies.edge(0.065, lr) == 'high' and studies.edge(0.06, lr) is None
  margin = {'low': 0.25, 'high': 2.0}  # linear: 10% of the width is 0.175
  assert studies.edge(0.42, margin) == 'low' and studies.edge(0.43, margin) is None
  assert studies.edge(1.83, margin) == 'high' and studies.edge(1.82, margin) is None
  assert studies.edge('relu', {'choices': ['relu', 'none']}) is None


def test_spearman_matches_scipy_with_ties_and_is_none_when_undefined():
  from scipy import stats
  xs, ys = [0.7, 0.71, 0.69, 0.7, 0.65, 0.72], [0.3, 0.25, 0.31, 0.28, 0.2, 0.24]
  assert studies.spearman(xs, ys) == pytest.approx(stats.spearmanr(xs, ys).statistic)
  assert studies.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
  assert studies.spearman([1, 2], [1, 2]) is None and studies.spearman([1, 1, 1], [1, 2, 3]) is None


def test_only_the_first_trials_by_number_count_and_ties_go_to_the_lower_number():
  trials = [{'study': 'a', 'trial': n, 'value': v} for n, v in [(3, 0.9), (0, 0.5), (1, 0.7),
                                                                (2, 0.7)]]
  counted = studies.counted_trials(trials, budget=3)
  assert [r['trial'] for r in counted['a']] == [0, 1, 2]
  assert studies.best(counted['a'])['trial'] == 1


def test_a_killed_trials_record_gives_way_to_its_retrys():
  """Trial 1 was killed after it wrote its record; trial 2 retried it: 1's record must not take
  a place in the budget."""
  trials = [{'study': 'a', 'trial': 0, 'value': 0.5}, {'study': 'a', 'trial': 1, 'value': 0.9},
            {'study': 'a', 'trial': 2, 'value': 0.6, 'retry_of': 1},
            {'study': 'a', 'trial': 3, 'value': 0.7}]
  counted = studies.counted_trials(trials, budget=3)
  assert [r['trial'] for r in counted['a']] == [0, 2, 3]


def test_every_study_has_its_config_space_and_blocks():
  markdown = (ROOT / 'RESULTS.md').read_text()
  for study in studies.STUDIES:
    assert (ROOT / 'configs' / f'{study.name}.py').exists()
    assert (ROOT / 'results' / 'spaces' / f'{study.name}.json').exists()
    for name in studies.tables(study):
      assert f'<!-- table:{name} -->' in markdown


def test_the_headline_says_each_verdict_of_the_declared_comparisons(monkeypatch):
  means = {'softmax_is': 0.51, 'softmax': 0.71, 'normface': 0.51, 'cosface': 0.21}
  finals = [{'name': m, 'seed': i, 'metrics': {'map@r': v + d, 'recall@1': v - d}}
            for m, v in means.items() for i, d in enumerate((-0.01, 0.0, 0.01))]
  monkeypatch.setattr(studies, '_records', lambda name: finals)
  assert studies.headline(studies.STUDIES[0]) == (
      '- **Unseen classes, FashionMNIST (5 training classes)**: softmax + IS against 3 tuned '
      'methods without IS (3 seeds; Welch, Holm at family-wise 5%): MAP@R better than CosFace, '
      'worse than softmax, no difference with NormFace; Recall@1 better than CosFace, worse than '
      'softmax, no difference with NormFace.')
  monkeypatch.setattr(studies, '_records', lambda name: [])
  assert 'not answered yet, no finals on record' in studies.headline(studies.STUDIES[0])


def test_a_spectrum_record_without_its_final_is_named(tmp_path):
  import shutil
  shutil.copytree(ROOT / 'results' / 'raw', tmp_path / 'raw')
  shutil.copytree(ROOT / 'results' / 'grids', tmp_path / 'grids')
  spectrum = tmp_path / 'raw' / 'fashion_mnist_open_set_spectrum.jsonl'
  lines = spectrum.read_text().splitlines()
  spectrum.write_text('\n'.join(lines[1:]) + '\n')  # arcface seed 0 no longer scored
  studies.HERE = str(tmp_path)
  try:
    problems = studies.problems(studies.STUDIES[0], lambda where, recorded, today: [])
  finally:
    studies.HERE = str(ROOT / 'results')
  assert problems == ["fashion_mnist_open_set_spectrum: its runs [('arcface', 0)] are not both "
                      'finals and scored; run results/score_embeddings.py on the finals again']


def test_a_moved_head_default_fails_the_check_of_the_tuned_studies(monkeypatch):
  """ArcFace's default scale moved: both studies' recorded defaults trials no longer say what
  isx.tune would enqueue, and --check says so; restored, it is quiet."""
  from isx.heads import arcface
  tuned = [s for s in studies.STUDIES if studies._records(f'{s.name}_trials')]
  assert len(tuned) >= 2
  for study in tuned:
    assert studies.defaults_problems(study) == []
  monkeypatch.setattr(arcface.Head, '__defaults__', (20.0, 0.5))
  for study in tuned:
    found = studies.defaults_problems(study)
    assert len(found) == 1 and found[0].startswith(f'{study.name} arcface: its defaults trial'), found
    assert "'model.head.scale': 20.0" in found[0], found


def test_last_quarter_gain_reads_the_curve_at_three_quarters_of_the_steps():
  curve = [{'step': 10, 'map@r': 0.5}, {'step': 20, 'map@r': 0.6}, {'step': 30, 'map@r': 0.7},
           {'step': 40, 'map@r': 0.72, 'recall@1': 0.9}]
  assert studies.last_quarter_gain(curve, 'map@r') == pytest.approx(0.02)  # 40 less 30
  assert studies.last_quarter_gain(curve, 'recall@1') is None  # one point only
  assert studies.last_quarter_gain(curve[:1], 'map@r') is None
  finals = {'softmax': [{'curve': curve}, {'curve': [{**p, 'map@r': p['map@r'] + 0.1}
                                                     for p in curve]}]}
  assert studies.convergence(None, finals)['softmax'][0] == (10, pytest.approx(0.55))
