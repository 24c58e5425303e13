"""Automatic download and preparation, against a loopback HTTP server (no network).

The test builds tiny archives in each official format (IDX .gz, CIFAR binary .tar.gz, SVHN
.mat), serves them on 127.0.0.1 and points isx at them with ISX_DATASET_SOURCES.
"""
import gzip
import hashlib
import http.server
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time

import numpy as np
import pytest
from scipy import io as scipy_io

from isx.datasets import download, idx, sources, store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNTS = {'train': 30, 'test': 20}  # examples per split in every tiny archive
EXPECTED = {}  # name -> split -> (HWC images, labels) that the builder must write


def _images(n, shape, seed):
  return np.random.default_rng(seed).integers(0, 256, (n, *shape), np.uint8)


def _labels(n, classes, seed):
  return np.random.default_rng(seed + 100).integers(0, classes, n).astype(np.uint8)


def _idx_files(name):
  out = {}
  for split, prefix in (('train', 'train'), ('test', 't10k')):
    n = COUNTS[split]
    for kind, array in (('images-idx3', _images(n, (28, 28), 1)), ('labels-idx1', _labels(n, 10, 1))):
      buf = io.BytesIO()
      with gzip.GzipFile(fileobj=buf, mode='wb') as f:
        f.write(bytes([0, 0, 8, array.ndim]) + b''.join(d.to_bytes(4, 'big') for d in array.shape)
                + array.tobytes())
      out[f'{prefix}-{kind}-ubyte.gz'] = buf.getvalue()
  return out


def _cifar_archive(name):
  folder, split_files, names_file, num_labels = sources._CIFAR[name]
  classes = 10 if name == 'cifar10' else 100
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w:gz') as tar:
    def add(member, data):
      info = tarfile.TarInfo(f'{folder}/{member}')
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
    add(names_file, '\n'.join(f'class_{i}' for i in range(classes)).encode() + b'\n\n')
    for split, files in split_files.items():
      per_file = COUNTS[split] // len(files)
      hwc, fine = [], []
      for k, member in enumerate(files):
        images = _images(per_file, (3, 32, 32), 10 + k + len(split))  # stored CHW
        labels = _labels(per_file, classes, 10 + k + len(split))
        label_bytes = (np.stack([labels // 5, labels], 1) if num_labels == 2 else labels[:, None])
        add(member, np.concatenate([label_bytes, images.reshape(per_file, -1)], 1).tobytes())
        hwc.append(np.moveaxis(images, 1, -1))
        fine.append(labels)
      EXPECTED.setdefault(name, {})[split] = np.concatenate(hwc), np.concatenate(fine)
  return {{'cifar10': 'cifar-10-binary.tar.gz', 'cifar100': 'cifar-100-binary.tar.gz'}[name]:
          buf.getvalue()}


def _svhn_files():
  out = {}
  for split in ('train', 'test'):
    buf = io.BytesIO()
    n = COUNTS[split]
    scipy_io.savemat(buf, {'X': np.moveaxis(_images(n, (32, 32, 3), 3), 0, -1),
                           'y': (_labels(n, 10, 3) + 1).reshape(-1, 1)})  # 1..10, 10 = digit 0
    out[f'{split}_32x32.mat'] = buf.getvalue()
  return out


FILES = {'mnist': _idx_files('mnist'), 'fashion_mnist': _idx_files('fashion_mnist'),
         'cifar10': _cifar_archive('cifar10'), 'cifar100': _cifar_archive('cifar100'),
         'svhn_cropped': _svhn_files()}


class _Server:
  """Serves FILES on 127.0.0.1; `cut` names files whose next request dies half-way."""

  def __init__(self):
    self.cut, self.requests, self.delay_s = set(), [], 0.0
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_GET(self):
        name, filename = self.path.strip('/').split('/')
        server.requests.append(filename)
        time.sleep(server.delay_s)
        data = FILES[name][filename]
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if filename in server.cut:
          server.cut.discard(filename)
          self.wfile.write(data[:len(data) // 2])
          self.wfile.flush()
          self.connection.shutdown(2)
          return
        self.wfile.write(data)

      def log_message(self, *args):
        pass

    self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    self.port = self.httpd.server_address[1]
    threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

  def sources_file(self, path, corrupt=(), port=None):
    rows = {name: [[f'http://127.0.0.1:{port or self.port}/{name}/{fn}', len(data),
                    hashlib.sha256(data + (b'x' if fn in corrupt else b'')).hexdigest(), fn]
                   for fn, data in files.items()] for name, files in FILES.items()}
    path.write_text(json.dumps(rows))
    return str(path)


@pytest.fixture(scope='module')
def server():
  s = _Server()
  yield s
  s.httpd.shutdown()


@pytest.fixture
def served(server, tmp_path, monkeypatch):
  server.requests.clear()
  server.delay_s = 0.0
  monkeypatch.setenv('ISX_DATASET_SOURCES', server.sources_file(tmp_path / 'sources.json'))
  return server


@pytest.mark.parametrize('name', sources.DATASETS)
def test_each_builder_writes_tfds_splits_labels_and_order(served, tmp_path, name):
  data_dir = tmp_path / 'data'
  path = sources.download_and_prepare(name, str(data_dir), 'offline hint')
  assert path.parent.name == name and path.name == sources.VERSIONS[name]
  import tensorflow_datasets as tfds
  assert str(tfds.builder_cls(name).VERSION) == sources.VERSIONS[name]
  builder = tfds.builder_from_directory(str(path))
  assert {s: i.num_examples for s, i in builder.info.splits.items()} == COUNTS
  assert os.listdir(data_dir) == [name]  # downloads and lock gone
  for split in COUNTS:
    source = builder.as_data_source(split)
    got = np.stack([source[i]['image'] for i in range(len(source))])
    labels = np.array([source[i]['label'] for i in range(len(source))])
    if name in idx.DATASETS:
      want = _images(COUNTS[split], (28, 28), 1)[..., None], _labels(COUNTS[split], 10, 1)
    elif name == 'svhn_cropped':
      want = _images(COUNTS[split], (32, 32, 3), 3), (_labels(COUNTS[split], 10, 3) + 1) % 10
    else:  # CIFAR: images back to HWC, the fine label, the names file's class names
      want = EXPECTED[name][split]
      classes = 10 if name == 'cifar10' else 100
      assert builder.info.features['label'].names == [f'class_{i}' for i in range(classes)]
    # The order is TFDS's (a hash of the same keys), so compare each image with its label.
    assert sorted(zip(map(bytes, got), labels)) == sorted(zip(map(bytes, want[0]), want[1]))


def test_checksum_mismatch_is_one_error_and_leaves_nothing(server, tmp_path, monkeypatch):
  monkeypatch.setenv('ISX_DATASET_SOURCES', server.sources_file(
      tmp_path / 's.json', corrupt={'cifar-100-binary.tar.gz'}))
  data_dir = tmp_path / 'data'
  with pytest.raises(download.DownloadError, match='failed its checksum .* it was deleted'):
    sources.download_and_prepare('cifar100', str(data_dir), 'hint')
  assert os.listdir(data_dir) == []


def test_a_cut_connection_fails_cleanly_and_the_next_run_succeeds(served, tmp_path):
  served.cut.add('test_32x32.mat')
  data_dir = tmp_path / 'data'
  with pytest.raises(download.DownloadError, match=r'cannot download .*test_32x32.mat: got \d+ of \d+ bytes \(connection cut\)'):
    sources.download_and_prepare('svhn_cropped', str(data_dir), 'hint')
  assert os.listdir(data_dir) == []
  assert sources.download_and_prepare('svhn_cropped', str(data_dir), 'hint') is not None


def test_connection_refused_fails_in_one_line_within_seconds(server, tmp_path, monkeypatch):
  import socket
  with socket.socket() as s:  # a port nobody listens on
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  monkeypatch.setenv('ISX_DATASET_SOURCES', server.sources_file(tmp_path / 's.json', port=port))
  from isx import input_pipeline  # imports out of the timed part: slow on a loaded machine
  from configs import mnist_simplenet
  config = mnist_simplenet.get_config()
  config.dataset.data_dir = str(tmp_path / 'data')
  start = time.time()
  with pytest.raises(download.DownloadError,
                     match=r'cannot download http://127.0.0.1:\d+/mnist/.*refused.*; offline: '
                           r'give a folder of its four IDX files, --config.dataset.idx_dir=DIR'):
    input_pipeline.dataset_info(config)
  assert time.time() - start < 10


def _main(args, env):
  return subprocess.Popen([sys.executable, '-m', 'isx.main', *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _env(sources_json):
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env.update(JAX_PLATFORMS='cpu', PYTHONPATH=ROOT, ISX_DATASET_SOURCES=sources_json,
             XLA_FLAGS='--xla_force_host_platform_device_count=1')
  return env


# SimpleNet keeps these quick (CIFAR-100 with a SimpleNet config); configs/cifar100_googlenet.py
# itself trains 2 steps in test_configs.py, and was run against this server by hand (docs/data.md).
@pytest.mark.parametrize('config,dataset', [('cifar10_simplenet', 'cifar100'),
                                            ('svhn_simplenet', 'svhn_cropped')])
@pytest.mark.slow
def test_isx_main_downloads_prepares_trains_and_evaluates(served, tmp_path, config, dataset):
  data_dir, workdir = tmp_path / 'data', tmp_path / 'run'
  p = _main([f'--config=configs/{config}.py', f'--workdir={workdir}',
             f'--config.dataset.data_dir={data_dir}', f'--config.dataset.name={dataset}',
             '--config.model.embedding_dim=16', '--config.num_train_steps=2',
             '--config.batch_size=8', '--config.eval_batch_size=10', '--config.plots=False'],
            _env(os.environ['ISX_DATASET_SOURCES']))
  out, err = p.communicate(timeout=300)
  assert p.returncode == 0, err[-3000:]
  assert 'downloading' in out and re.search(r'step 2: \d+ test examples \| accuracy ', out), out
  assert json.load(open(workdir / 'eval' / 'metrics.json'))['num_examples'] == COUNTS['test']


@pytest.mark.slow
def test_two_processes_asking_at_once_prepare_once(served, tmp_path):
  served.delay_s = 5.0  # the first holds the lock while the second starts
  data_dir = tmp_path / 'data'
  code = ('import sys; from isx.datasets import sources; '
          'print(sources.download_and_prepare("cifar10", sys.argv[1], "hint"))')
  procs = [subprocess.Popen([sys.executable, '-c', code, str(data_dir)], cwd=ROOT,
                            env=_env(os.environ['ISX_DATASET_SOURCES']), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for _ in range(2)]
  outs = [p.communicate(timeout=300) for p in procs]
  assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
  paths = [out.splitlines()[-1] for out, _ in outs]
  assert paths[0] == paths[1] and paths[0].endswith('cifar10/3.0.2')
  assert sum('waiting for another process' in out for out, _ in outs) <= 1
  assert served.requests == ['cifar-10-binary.tar.gz']  # downloaded once
  assert store.split_sizes('cifar10', data_dir) == COUNTS
