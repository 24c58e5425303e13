"""Class-disjoint training and validation splits (isx.class_split) on the tiny dataset: training
never sees a held-out class, the validation split is disjoint from training and from the test
split, and held-out classes are scored by retrieval only."""
import json
import os

import numpy as np
import pytest

from isx import class_split, config_checks, errors, input_pipeline, train


def test_class_specs_and_the_lines_for_bad_ones():
  assert class_split.parse('first_half', 10) == (0, 1, 2, 3, 4)
  assert class_split.parse('second_half', 10) == (5, 6, 7, 8, 9)
  assert class_split.parse('2-4', 10) == (2, 3, 4)
  assert class_split.parse('7,1,3', 10) == (7, 1, 3)
  for spec, line in (('0-12', 'names classes the dataset lacks (10, 11, 12); it has classes 0-9'),
                     ('0-9', "names every class, so none is held out; write 'all'"),
                     (',', 'names no class'), ('cats', "is not 'all', 'first_half'")):
    with pytest.raises(errors.ConfigError, match=line.replace('(', r'\(').replace(')', r'\)')):
      class_split.parse(spec, 10)


def _info(tiny_config, **dataset):
  tiny_config.dataset.update(dataset)
  return input_pipeline.dataset_info(tiny_config)


def _labels(info, split):
  return input_pipeline._labels(info.path, split)


def test_class_disjoint_training_never_sees_a_held_out_class(tiny_config):
  info = _info(tiny_config, classes='first_half')
  train_labels = _labels(info, 'train')
  assert info.classes == (0, 1, 2, 3, 4) and info.num_classes == 5
  assert set(train_labels[info.train_ids]) == {0, 1, 2, 3, 4}
  assert info.num_train == int(np.sum(train_labels < 5))
  # Host-fed batches and the device-resident split: head labels 0-4, from first-half examples.
  batches = input_pipeline.train_batches(tiny_config, info)
  for _ in range(12):  # two epochs of 6 steps
    assert set(next(batches)['label']) <= set(range(5))
  resident = input_pipeline.load_train_split(tiny_config, info)
  np.testing.assert_array_equal(resident['label'], train_labels[info.train_ids])
  # The test split is scored on the held-out classes only.
  assert set(_labels(info, 'test')[info.eval_ids]) == {5, 6, 7, 8, 9}


@pytest.mark.parametrize('dataset,source', [
    ({'validation_fraction': 0.25}, 'train'),
    ({'classes': 'first_half', 'validation_classes': 2}, 'train')])
def test_the_validation_split_is_disjoint_from_training_and_from_the_test_split(
    tiny_config, dataset, source):
  info = _info(tiny_config, eval_split='validation', **dataset)
  assert info.eval_source == source  # drawn from the train split: never a test example
  assert not set(info.train_ids) & set(info.eval_ids) and len(info.eval_ids) > 0
  if 'validation_classes' in dataset:  # open-set: class-disjoint too, and trained on 0-2 only
    labels = _labels(info, 'train')
    assert set(labels[info.eval_ids]) == {3, 4} and set(labels[info.train_ids]) == {0, 1, 2}
    assert info.num_classes == 3
  else:
    assert len(info.eval_ids) == round(0.25 * 96) and info.num_classes == 10
  # Fixed: the same split for every run.
  again = input_pipeline.dataset_info(tiny_config)
  np.testing.assert_array_equal(again.eval_ids, info.eval_ids)


def _dataset(**fields):
  import ml_collections
  from configs import default
  dataset = default.get_config().dataset
  dataset.update(fields)
  return ml_collections.ConfigDict(dataset)


def _folds(fields, count, labels):
  return [class_split.split(_dataset(eval_split='validation', validation_fold=f, **fields), 10,
                            labels, None) for f in range(count)]


def test_open_set_folds_hold_each_training_class_out_equally_often_and_fold_0_is_the_default():
  labels = np.arange(120) % 10
  fields = {'classes': 'first_half', 'validation_classes': 2}
  folds = _folds(fields, 5, labels)  # 5 / gcd(5, 2) folds
  held = [tuple(sorted(set(labels[eval_ids]))) for _, _, eval_ids in folds]
  assert held == [(3, 4), (1, 2), (0, 4), (2, 3), (0, 1)]
  assert [c for h in held for c in h].count(0) == 2 and len({*map(len, held)}) == 1
  for classes, train_ids, eval_ids in folds:  # class-disjoint, each fold trains on the rest
    assert set(labels[train_ids]) == set(classes) == {0, 1, 2, 3, 4} - set(labels[eval_ids])
  default = class_split.split(_dataset(eval_split='validation', **fields), 10, labels, None)
  assert all(np.array_equal(a, b) for a, b in zip(default, folds[0]))
  disjoint = _folds({'classes': '0-5', 'validation_classes': 2}, 3, labels)  # 6 // 2 = 3
  assert [sorted(set(labels[e])) for _, _, e in disjoint] == [[4, 5], [2, 3], [0, 1]]
  with pytest.raises(errors.ConfigError, match=r'validation_fold=5: 5 training classes in '
                                               r'windows of 2 make 5 folds \(0 to 4\)'):
    _folds(fields, 6, labels)


def test_closed_set_folds_are_disjoint_slices_of_the_seeded_order():
  labels = np.arange(120) % 10
  folds = _folds({'validation_fraction': 0.25}, 4, labels)
  held = [set(eval_ids) for _, _, eval_ids in folds]
  assert all(len(h) == 30 for h in held) and set().union(*held) == set(range(120))
  for (_, train_ids, eval_ids), h in zip(folds, held):
    assert not set(train_ids) & h and len(train_ids) == 90
  assert all(not a & b for i, a in enumerate(held) for b in held[i + 1:])
  with pytest.raises(errors.ConfigError, match=r'validation_fold=4: .* make 4 folds'):
    _folds({'validation_fraction': 0.25}, 5, labels)


@pytest.mark.parametrize('fold,line', [
    (-1, 'validation_fold must be an integer >= 0, got -1'),
    (2, 'validation_fold=2 picks a fold of the validation split: set dataset.validation_classes')])
def test_a_bad_validation_fold_is_one_line(fold, line):
  with pytest.raises(errors.ConfigError, match=line):
    class_split.check_settings(_dataset(validation_fold=fold))


@pytest.mark.slow  # a whole training and eval: the full suite's
def test_held_out_classes_are_scored_by_retrieval_and_accuracy_says_why_not(tiny_config, tmp_path):
  tiny_config.dataset.classes = 'first_half'
  workdir = str(tmp_path / 'run')
  metrics = train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  on_disk = json.load(open(os.path.join(workdir, 'eval', 'metrics.json')))
  assert 'accuracy' not in on_disk and on_disk['not_computed'] == [
      'accuracy: the scored classes are held out of training']
  assert on_disk['train_classes'] == [0, 1, 2, 3, 4] and on_disk['scored_classes'] == [5, 6, 7, 8, 9]
  assert np.isfinite(on_disk['map@r']) and metrics['split'] == 'test'
  saved = np.load(os.path.join(workdir, 'eval', 'embeddings.npz'))
  assert set(saved['labels']) == {5, 6, 7, 8, 9}  # the dataset's own labels
  assert saved['logits'].shape[1] == 5  # one output per training class
  assert json.load(open(os.path.join(workdir, 'config.json')))['dataset']['classes'] == 'first_half'


def test_scoring_a_mix_of_seen_and_unseen_classes_says_so():
  from isx import evaluation
  rng = np.random.default_rng(0)
  labels = np.arange(40) % 10
  outputs = {'embedding': rng.normal(size=(40, 4)), 'logits': rng.normal(size=(40, 8)),
             'label': labels, 'index': np.arange(40)}
  evals = {'accuracy': {'type': 'accuracy', 'every_steps': 0},
           'retrieval': {'type': 'retrieval', 'every_steps': 0, 'ks': (1,), 'block_size': 64}}
  metrics = evaluation.compute_metrics(outputs, evals, classes=tuple(range(8)))
  assert metrics['unseen_classes'] == [8, 9] and 'accuracy' not in metrics
  assert metrics['not_computed'] == [
      'accuracy: 2 of the scored classes (8,9) were held out of training, beside 8 trained ones']
  assert 'unseen' not in evaluation.summary({**metrics, 'step': 1}, evals)  # a note of metrics.json


def test_one_training_class_is_refused(tiny_config):
  for dataset in ({'classes': '3'}, {'classes': '3,4', 'validation_classes': 1}):
    tiny_config.dataset.update(dataset)
    with pytest.raises(errors.ConfigError, match=r'with one class|fewer than 2'):
      input_pipeline.dataset_info(tiny_config)


@pytest.mark.slow  # a whole training and eval: the full suite's
def test_an_eval_of_another_split_writes_beside_the_test_results(tiny_config, tmp_path):
  """Scoring the validation split of a run scored on the test split keeps the test results: the
  other split's files go to eval/validation/, and each embeddings.npz names its split."""
  from isx import evaluation
  tiny_config.dataset.validation_fraction = 0.25
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  test_files = {name: open(os.path.join(workdir, 'eval', name), 'rb').read()
                for name in ('metrics.json', 'embeddings.npz')}
  tiny_config.dataset.eval_split = 'validation'
  metrics = evaluation.evaluate_workdir(config_checks.prepare(tiny_config), workdir)
  for name, data in test_files.items():
    assert open(os.path.join(workdir, 'eval', name), 'rb').read() == data
  other = np.load(os.path.join(workdir, 'eval', 'validation', 'embeddings.npz'))
  assert str(other['split']) == 'validation' and len(other['labels']) == round(0.25 * 96)
  assert str(np.load(os.path.join(workdir, 'eval', 'embeddings.npz'))['split']) == 'test'
  saved = json.load(open(os.path.join(workdir, 'eval', 'validation', 'metrics.json')))
  assert saved['split'] == 'validation' and saved['map@r'] == metrics['map@r']
  records = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert any('eval/map@r' in r for r in records) and any('eval_validation/map@r' in r
                                                          for r in records)
