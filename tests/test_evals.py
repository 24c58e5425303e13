"""The metric plug-ins in isx/evals that isx/knn's tests do not cover."""
import numpy as np
import pytest

from isx import evals


def test_embedding_norm_percentiles():
  embedding = np.zeros((11, 2), np.float32)
  embedding[:, 0] = np.arange(11)  # norms 0, 1, ..., 10
  metrics = evals.load('embedding_norm')({'embedding': embedding})
  assert metrics == pytest.approx({'embedding_norm/median': 5.0, 'embedding_norm/p10': 1.0,
                                   'embedding_norm/p90': 9.0})


def test_metrics_of_a_diverged_checkpoint_are_written_and_count_the_non_finite(tiny_config):
  from isx import evaluation
  rng = np.random.default_rng(0)
  embedding = rng.normal(size=(32, 4)).astype(np.float32)
  embedding[:3, 1] = np.nan
  outputs = {'embedding': embedding, 'logits': rng.normal(size=(32, 10)).astype(np.float32),
             'label': np.arange(32) % 10, 'index': np.arange(32)}
  tiny_config.evals.retrieval.ks = (1, 5)
  metrics = evaluation.compute_metrics(outputs, tiny_config.evals)
  assert metrics['num_nonfinite_embeddings'] == 3 and metrics['num_examples'] == 32
  assert np.isfinite(metrics['embedding_norm/median'])
  line = evaluation.summary({**metrics, 'step': 7}, tiny_config.evals)
  assert line.startswith('step 7: 32 test examples | 3 embeddings NOT FINITE | accuracy '), line
  assert ' | Recall@1/5 ' in line and ' | MAP@R ' in line and ' | embedding norm ' in line, line
  assert 'num_examples' not in line and 'embedding_norm/' not in line, line


def test_a_full_disk_while_writing_eval_results_says_the_checkpoint_is_kept(tmp_path, monkeypatch):
  import errno
  from isx import evaluation

  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')
  monkeypatch.setattr(np, 'savez', full)
  outputs = {'embedding': np.zeros((2, 3)), 'label': np.zeros(2), 'logits': np.zeros((2, 4))}
  with pytest.raises(OSError) as e:
    evaluation.write_results(str(tmp_path), {'accuracy': 1.0}, outputs)
  assert str(e.value) == (f'cannot write the eval results to {tmp_path}/eval (No space left on '
                          f'device); free some space, then python -m isx.eval '
                          f'--workdir={tmp_path} writes them again from the saved checkpoint')


def test_an_unnamed_full_disk_error_still_says_what_to_do(capsys):
  import errno
  from isx import cli
  with pytest.raises(SystemExit):
    cli.fail(OSError(errno.ENOSPC, 'No space left on device', 'run/metrics.jsonl'))
  assert capsys.readouterr().err == ('error: no space left on the device writing run/metrics.jsonl; '
                                     'free some space or choose another --workdir. Saved '
                                     'checkpoints are kept\n')


def test_evals_resolve_fills_checks_and_names_what_is_wrong():
  resolved = evals.resolve({'accuracy': {'every_steps': None}, 'retrieval': {'ks': [1, 3]}})
  assert resolved == {'accuracy': {'type': 'accuracy', 'every_steps': None},
                      'retrieval': {'type': 'retrieval', 'every_steps': 0, 'ks': (1, 3),
                                    'block_size': 1024}}
  assert evals.periods(resolved, steps_per_epoch=7) == {'accuracy': 7}
  for bad, message in [({'retrieval': {'k': 3}}, r"eval 'retrieval' \(evals.retrieval\) does not "
                                                 r"take k; it takes block_size, every_steps, ks"),
                       ({'accuracy': {'every_steps': -2}}, 'every_steps must be None'),
                       (('accuracy', 'retrieval'), r'config.evals is a dict .*:evals=accuracy\+retrieval')]:
    with pytest.raises(ValueError, match=message):
      evals.resolve(bad)


def test_embedding_spectrum_counts_the_directions_the_embedding_uses():
  from isx.evals import embedding_spectrum
  rng = np.random.default_rng(0)
  plane = np.zeros((4000, 8))
  plane[:, :2] = rng.normal(size=(4000, 2))  # two equal directions, nothing in the other six
  got = embedding_spectrum.compute({'embedding': plane}, top=(1, 2))
  assert got['embedding_spectrum/participation_ratio'] == pytest.approx(2.0, rel=0.05)
  assert got['embedding_spectrum/top1_share'] == pytest.approx(0.5, abs=0.03)
  assert got['embedding_spectrum/top2_share'] == pytest.approx(1.0)
  spread = rng.normal(size=(4000, 8))
  assert embedding_spectrum.compute({'embedding': spread})[
      'embedding_spectrum/participation_ratio'] == pytest.approx(8.0, rel=0.05)
  assert embedding_spectrum.compute({'embedding': np.ones((5, 3))}) == {
      'embedding_spectrum/participation_ratio': 0.0}
  with pytest.raises(ValueError, match='positive ints'):
    embedding_spectrum.check(None, top=(0,))


def test_feature_retrieval_scores_the_backbone_features_before_is_and_the_fc(tiny_config, tmp_path):
  """A trained workdir evaluated with feature_retrieval: its features/ metrics are retrieval's
  on the flattened conv features (recomputed here), and differ from the embedding's."""
  import jax
  from isx import config_checks, evaluation, input_pipeline, knn, train
  from isx.experiment import Experiment
  from isx.preprocess import preprocess
  workdir = str(tmp_path / 'run')
  tiny_config.num_train_steps = 2
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  tiny_config.evals = {**tiny_config.evals.to_dict(), 'feature_retrieval': {'ks': (1, 5)}}
  metrics = evaluation.evaluate_workdir(config_checks.prepare(tiny_config), workdir)
  exp = Experiment.create(tiny_config, workdir)
  source = input_pipeline.builder(tiny_config).as_data_source('test')
  images = np.stack([source[i]['image'] for i in range(len(source))])
  labels = np.array([source[i]['label'] for i in range(len(source))])
  out = exp.model.apply({'params': exp.state.params}, preprocess(images, tiny_config.dataset))
  assert out['features'].shape == (len(labels), 3 * 3 * 128)  # SimpleNet's 1152, before IS
  want = knn.retrieval_metrics(np.asarray(jax.device_get(out['features'])), labels, (1, 5))
  for k, v in want.items():
    assert metrics[f'features/{k}'] == pytest.approx(v, abs=1e-6)
  line = evaluation.summary(metrics, tiny_config.evals)
  assert ' | features Recall@1/5 ' in line and ' | features MAP@R ' in line, line
  assert 'features/' not in line, line


def test_features_reach_the_host_only_when_an_eval_reads_them():
  base = {'accuracy': {'type': 'accuracy'}, 'retrieval': {'type': 'retrieval'}}
  assert evals.outputs(base) == ('logits', 'embedding')
  assert evals.outputs({**base, 'feature_retrieval': {}}) == ('logits', 'embedding', 'features')
