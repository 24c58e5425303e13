"""isx.sweep: the in-memory training harness behind RESULTS.md."""
import numpy as np
import pytest

from configs import fashion_mnist_simplenet
from conftest import make_tiny_images
from isx import sweep


@pytest.fixture(scope='module')
def tiny_arrays():
  train_images, train_labels = make_tiny_images(96, 0)
  test_images, test_labels = make_tiny_images(37, 1)
  return {'train_images': train_images[..., None], 'train_labels': train_labels,
          'test_images': test_images[..., None], 'test_labels': test_labels}


def test_array_batches_are_epoch_permutations_and_resumable():
  images, labels = np.arange(20)[:, None], np.arange(20)
  batches = sweep.array_batches(images, labels, 4, seed=3)
  run = [next(batches)['label'] for _ in range(10)]  # 5 batches per epoch
  epochs = np.concatenate(run[:5]), np.concatenate(run[5:])
  for epoch in epochs:
    np.testing.assert_array_equal(np.sort(epoch), np.arange(20))
  assert not np.array_equal(*epochs)
  resumed = sweep.array_batches(images, labels, 4, seed=3, start_step=6)
  np.testing.assert_array_equal(np.stack([next(resumed)['label'] for _ in range(3)]),
                                np.stack(run[6:9]))


@pytest.mark.parametrize('batch_size', [8, 16, 40])
def test_padded_batches_hold_every_example_once(batch_size):
  labels = np.arange(37) % 10
  batches = list(sweep.padded_batches(np.zeros((37, 2, 2, 1)), labels, batch_size))
  assert all(len(b['mask']) == batch_size for b in batches)
  mask = np.concatenate([b['mask'] for b in batches]) > 0
  np.testing.assert_array_equal(np.concatenate([b['index'] for b in batches])[mask], np.arange(37))
  np.testing.assert_array_equal(np.concatenate([b['label'] for b in batches])[mask], labels)


def test_run_trains_and_scores_the_test_split_in_order(tiny_arrays):
  config = sweep.apply_overrides(fashion_mnist_simplenet.get_config(), {
      'model.embedding_dim': 16, 'batch_size': 16, 'eval_batch_size': 16, 'num_train_steps': 8,
      'warmup_steps': 0})
  metrics, outputs = sweep.run(config, tiny_arrays)
  assert metrics['step'] == 8 and metrics['finite'] and metrics['num_examples'] == 37
  assert len(metrics['epoch_losses']) == 2  # 6 steps per epoch: after step 6 and at the end
  assert all(0.0 <= metrics[k] <= 1.0 for k in ('accuracy', 'recall@1', 'map@r'))
  np.testing.assert_array_equal(outputs['label'], tiny_arrays['test_labels'])
  assert outputs['embedding'].shape == (37, 16)


def test_apply_overrides_rejects_unknown_keys():
  with pytest.raises(KeyError):
    sweep.apply_overrides(fashion_mnist_simplenet.get_config(), {'model.xii': 10.0})
