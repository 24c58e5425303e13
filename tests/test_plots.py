"""The pictures: what they show is checked on data with a known answer, and every run writes them."""
import os

import numpy as np
import pytest
from PIL import Image

from isx import config_checks, evaluation, plots, train

import tb_events  # tests/


def test_retrieval_examples_show_true_neighbours_and_mark_their_class(tmp_path):
  # Two tight clusters on a line; the last point of class 0 sits inside class 1's cluster.
  embeddings = np.array([[0.0], [0.1], [0.2], [0.3], [10.0], [10.1], [10.2], [10.12]], np.float32)
  labels = np.array([0, 0, 0, 0, 1, 1, 1, 0])
  images = np.arange(8, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8)
  path = tmp_path / 'r.png'
  q, nn, same = plots.retrieval_examples(embeddings, labels, lambda i: images[i], path,
                                         queries=8, k=3)
  np.testing.assert_array_equal(q, np.arange(8))
  np.testing.assert_array_equal(nn[0], [1, 2, 3])
  np.testing.assert_array_equal(nn[7], [5, 6, 4])  # 0.02, 0.08 and 0.12 away
  assert not same[7].any() and same[:4].all()
  assert Image.open(path).size[0] > 0


def test_embedding_norms_histogram(tmp_path):
  rng = np.random.default_rng(0)
  plots.embedding_norms({'with IS': rng.normal(size=(100, 8)),
                         'without IS': 30 * rng.normal(size=(100, 8))}, tmp_path / 'n.png')
  assert Image.open(tmp_path / 'n.png').size[0] > 0


@pytest.mark.slow
def test_training_and_the_eval_binary_write_the_pictures(tiny_config, tmp_path):
  tiny_config.plots, workdir = True, str(tmp_path / 'run')
  names = ('learning_curves.png', 'embedding_norms.png', 'retrieval_examples.png')
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  for name in names:
    assert Image.open(os.path.join(workdir, name)).size[0] > 0
    os.remove(os.path.join(workdir, name))
  evaluation.evaluate_workdir(config_checks.prepare(tiny_config), workdir)
  assert all(os.path.exists(os.path.join(workdir, name)) for name in names)


def test_a_diverged_eval_still_draws_its_finite_embeddings_and_says_how_many_it_left_out(tmp_path):
  rng = np.random.default_rng(0)
  embeddings = rng.normal(size=(40, 2)).astype(np.float32)
  embeddings[:5] = np.nan
  (tmp_path / 'eval').mkdir()
  np.savez(tmp_path / 'eval' / 'embeddings.npz', embeddings=embeddings,
           labels=np.arange(40) % 4, logits=np.zeros((40, 4), np.float32))
  images = np.zeros((40, 4, 4, 1), np.uint8)
  seen = []
  plots.plot_workdir(str(tmp_path), read_images=lambda i: seen.append(np.asarray(i)) or images[i])
  for name in ('embedding_norms.png', 'retrieval_examples.png', 'features.png'):
    assert Image.open(tmp_path / name).size[0] > 0
  assert seen and (np.concatenate([np.ravel(s) for s in seen]) >= 5).all()  # finite rows only


def test_embeddings_whose_norms_pass_float32s_range_are_drawn(tmp_path):
  """A run diverging slowly leaves finite embeddings near float32's limit: their float32 norms
  are inf, and a histogram over them could not be binned."""
  embeddings = np.full((30, 8), 3e38, np.float32)
  embeddings[:10] = 1e-3
  embeddings[10] = 0.0
  plots.embedding_norms({'diverged': embeddings}, tmp_path / 'n.png')
  assert Image.open(tmp_path / 'n.png').size[0] > 0


@pytest.mark.slow  # a whole training and eval: the full suite's
def test_a_picture_that_fails_is_a_warning_after_the_summary_and_costs_no_metrics(
    tiny_config, tmp_path, monkeypatch, capsys):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  os.remove(os.path.join(workdir, 'eval', 'metrics.json'))
  capsys.readouterr()

  def broken(*args, **kwargs):
    raise ValueError('Too many bins for data range')
  monkeypatch.setattr(plots, 'embedding_norms', broken)
  tiny_config.plots = True
  metrics = evaluation.evaluate_workdir(config_checks.prepare(tiny_config), workdir)
  out = capsys.readouterr().out
  assert out.index(f'step {metrics["step"]}: ') < out.index(
      'warning: could not draw') and 'embedding_norms.png (ValueError: Too many bins' in out
  assert os.path.exists(os.path.join(workdir, 'eval', 'metrics.json'))
  assert os.path.exists(os.path.join(workdir, 'retrieval_examples.png'))  # the others are drawn
  found = tb_events.tags(workdir)  # and shown in TensorBoard too
  assert found['pictures/retrieval_examples'] == found['pictures/learning_curves'] == 'image'
