"""Test setup: 8 simulated CPU devices for the sharding tests, no GPU, and one compilation
cache for the session."""
import atexit
import os
import shutil
import tempfile

# LLVM at -O0: the tests' tiny steps compile a third faster (test_configs: 216 -> 142 s on 2
# cores) and run barely slower; a test that sets its own XLA_FLAGS compiles as users do.
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8 '
                                   '--xla_backend_optimization_level=0')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')
# Many tests (and the isx.main subprocesses they start, which inherit this) compile the same
# tiny train and eval steps; a persistent cache shared by the session compiles each once. It
# halves test_train + test_reliability on 2 cores (400 -> 217 s). Fresh per session (hermetic).
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='isx-test-jax-cache-')
  atexit.register(shutil.rmtree, os.environ['JAX_COMPILATION_CACHE_DIR'], ignore_errors=True)
# Every compilation is cached, not only those over JAX's default 1 s: the tiny steps compile in
# less at -O0, again in every test (measured: fast tier 137 -> 126 s, 4% off the slow tests).
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')

# The isx binaries the tests start keep XLA's default convolution path (YNNPACK), as the
# in-process tests do, instead of timing both for every tiny model (test_cpu_setup times them);
# a cache of such timings would live in a fresh folder.
os.environ.setdefault('ISX_CPU_CONV_PATH', 'ynnpack')
if 'ISX_CACHE_DIR' not in os.environ:
  os.environ['ISX_CACHE_DIR'] = tempfile.mkdtemp(prefix='isx-test-cache-')
  atexit.register(shutil.rmtree, os.environ['ISX_CACHE_DIR'], ignore_errors=True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def make_tiny_images(n, seed):
  """28x28 uint8 images whose class (0-9) is a bright 7x7 square at a class-specific place."""
  rng = np.random.default_rng(seed)
  labels = np.arange(n) % 10
  rng.shuffle(labels)
  images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
  for i, c in enumerate(labels):
    r, col = 7 * (c // 4), 7 * (c % 4)
    images[i, r:r + 7, col:col + 7] = 255
  return images, labels.astype(np.uint8)


@pytest.fixture(scope='session')
def tiny_data_dir(tmp_path_factory):
  """A tiny 'fashion_mnist' (96 train / 37 test) written through the real TFDS path."""
  import idx_files  # tests/
  from isx.datasets import idx
  root = tmp_path_factory.mktemp('tiny_fmnist')
  (root / 'idx').mkdir()
  for prefix, n, seed in (('train', 96, 0), ('t10k', 37, 1)):
    images, labels = make_tiny_images(n, seed)
    idx_files.write_idx(root / 'idx' / f'{prefix}-images-idx3-ubyte', images)
    idx_files.write_idx(root / 'idx' / f'{prefix}-labels-idx1-ubyte', labels)
  idx.prepare_idx_dataset('fashion_mnist', root / 'idx', root / 'tfds')
  return str(root / 'tfds')


@pytest.fixture
def tiny_config(tiny_data_dir):
  from configs import fashion_mnist_simplenet
  c = fashion_mnist_simplenet.get_config()
  c.dataset.data_dir = tiny_data_dir
  c.model.embedding_dim = 16
  c.batch_size = 16
  c.eval_batch_size = 16
  c.num_train_steps = 6
  c.log_every_steps = 2
  c.evals.accuracy.every_steps = 4
  c.checkpoint_every_steps = 3
  c.plots = False
  return c


def pytest_collection_modifyitems(items):
  """The slow tests (whole trainings, clusters: up to two minutes each) first. With
  --dist=loadgroup (setup.cfg) a worker takes the next test when it is free, so the run no
  longer ends with one worker on a long test while the other idles."""
  items.sort(key=lambda item: item.get_closest_marker('slow') is None)
