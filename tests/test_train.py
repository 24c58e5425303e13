"""End to end through the real TFDS path: train, resume, shard, evaluate, fail clearly."""
import glob
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tb_events  # tests/

from isx import checkpointing, config_checks, errors, evaluation, input_pipeline, knn, losses
from isx import models, optim
from isx import step as step_lib, train
from isx import mesh as mesh_lib
from isx.experiment import Experiment
from isx.preprocess import preprocess


def _params(workdir, config):
  exp = Experiment.create(config, workdir)
  assert exp.restored is not None
  return jax.device_get(exp.state.params), exp.restored


def test_train_and_evaluate_writes_metrics_and_embeddings(tiny_config, tmp_path):
  workdir = str(tmp_path / 'run')
  tiny_config.profile_steps = (2, 4)
  metrics = train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  assert glob.glob(os.path.join(workdir, 'profile', '**', '*.xplane.pb'), recursive=True)
  with open(os.path.join(workdir, 'eval', 'metrics.json')) as f:
    on_disk = json.load(f)
  expected_keys = {'accuracy', 'recall@1', 'recall@5', 'recall@10', 'precision@1', 'precision@5',
                   'precision@10', 'map@r', 'num_examples', 'step'}
  assert expected_keys <= set(on_disk) and on_disk['step'] == 6 and on_disk['num_examples'] == 37
  table = open(os.path.join(workdir, 'parameters.txt')).read().splitlines()
  params = _params(workdir, tiny_config)[0]
  assert table[-1].split()[-1] == f'{sum(p.size for p in jax.tree.leaves(params)):,}'
  assert len(table) == len(jax.tree.leaves(params)) + 1
  assert any(row.startswith('classifier/fc_embedding/kernel ') for row in table)
  assert all(0.0 <= on_disk[k] <= 1.0 for k in expected_keys - {'num_examples', 'step'})
  data = np.load(os.path.join(workdir, 'eval', 'embeddings.npz'))
  assert data['embeddings'].shape == (37, 16) and data['embeddings'].dtype == np.float32
  # Dataset order: labels equal the test split as TFDS reads it.
  source = input_pipeline.builder(tiny_config).as_data_source('test')
  np.testing.assert_array_equal(data['labels'], [source[i]['label'] for i in range(len(source))])
  recomputed = knn.retrieval_metrics(data['embeddings'], data['labels'], (1, 5, 10))
  for k, v in recomputed.items():
    assert on_disk[k] == pytest.approx(v, abs=1e-6)
  assert on_disk['accuracy'] == pytest.approx(
      np.mean(np.argmax(data['logits'], -1) == data['labels']))
  assert metrics == on_disk
  records = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
  train_records = [r for r in records if 'train/loss' in r]
  assert [r['step'] for r in train_records] == [2, 4, 6]
  assert {'train/accuracy', 'train/learning_rate', 'train/grad_norm',
          'train/steps_per_s'} <= set(train_records[0])
  assert any('test/accuracy' in r for r in records)
  # The final metrics reach metrics.jsonl (and TensorBoard) too, at the checkpoint's step.
  (final,) = [r for r in records if 'eval/map@r' in r]
  assert final['step'] == 6 and all(final[f'eval/{k}'] == pytest.approx(on_disk[k])
                                    for k in expected_keys - {'step'})
  # TensorBoard's run is the workdir itself: the scalars and the embedding norms' histogram.
  found = tb_events.tags(workdir)
  assert found['train/loss'] == found['eval/map_r'] == 'scalar', found  # '@' becomes '_'
  assert found['eval/embedding_norm'] == 'histo'


@pytest.mark.slow
def test_the_eval_binary_scores_the_checkpointed_ema_as_training_did(tiny_config, tmp_path):
  workdir = str(tmp_path / 'run')
  tiny_config.ema_decay = 0.9
  trained = train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  again = evaluation.evaluate_workdir(config_checks.prepare(tiny_config), workdir)
  for k in ('accuracy', 'map@r'):
    assert again[k] == pytest.approx(trained[k], abs=1e-6), k


@pytest.mark.slow
def test_stop_and_resume_equals_uninterrupted(tiny_config, tmp_path):
  full, part = str(tmp_path / 'full'), str(tmp_path / 'part')
  # 16-example batches over 96 examples: 6 steps per epoch, so 9 steps cross an epoch boundary.
  tiny_config.num_train_steps = 9
  train.train_and_evaluate(config_checks.prepare(tiny_config), full)
  tiny_config.num_train_steps = 4
  train.train_and_evaluate(config_checks.prepare(tiny_config), part)
  tiny_config.num_train_steps = 9
  train.train_and_evaluate(config_checks.prepare(tiny_config), part)  # resumes at step 4
  (p_full, s_full), (p_part, s_part) = _params(full, tiny_config), _params(part, tiny_config)
  assert s_full == s_part == 9
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               p_full, p_part)


def test_train_order_is_deterministic_and_resumable(tiny_config):
  info = input_pipeline.dataset_info(tiny_config)
  it = input_pipeline.train_batches(tiny_config, info)
  first = [next(it)['label'] for _ in range(9)]
  resumed = input_pipeline.train_batches(tiny_config, info, start_step=5)
  np.testing.assert_array_equal(np.stack([next(resumed)['label'] for _ in range(4)]),
                                np.stack(first[5:]))
  # Epochs differ in order but cover the same examples.
  assert not np.array_equal(first[0], first[6])


@pytest.mark.parametrize('eval_batch_size', [8, 16, 40])
def test_padded_eval_scores_every_example_once(tiny_config, eval_batch_size):
  tiny_config.eval_batch_size = eval_batch_size
  info = input_pipeline.dataset_info(tiny_config)
  batches = list(input_pipeline.eval_batches(tiny_config, info))
  assert all(len(b['mask']) == eval_batch_size for b in batches)
  mask = np.concatenate([b['mask'] for b in batches])
  index = np.concatenate([b['index'] for b in batches])[mask > 0]
  np.testing.assert_array_equal(np.sort(index), np.arange(37))


@pytest.mark.slow
def test_sharded_step_on_8_devices_matches_1_device(tiny_config):
  assert jax.device_count() == 8
  info = input_pipeline.dataset_info(tiny_config)
  batch = next(input_pipeline.train_batches(tiny_config, info))
  results = []
  for devices in (jax.devices()[:1], jax.devices()):
    exp = Experiment.create(tiny_config, info=info, mesh=mesh_lib.make_mesh(devices))
    state, train_fn = exp.state, exp.train_fn
    global_batch = mesh_lib.to_global(jax.tree.map(lambda x: x[None], batch),
                                      mesh_lib.chunk_sharding(exp.mesh))
    assert len(global_batch['image'].sharding.device_set) == len(devices)
    for _ in range(3):
      state, metrics = train_fn(state, global_batch, jax.random.key(1))
    metrics = jax.tree.map(lambda m: m[0], metrics)
    results.append((jax.device_get(state.params), float(metrics['loss'])))
  (p1, l1), (p8, l8) = results
  assert l1 == pytest.approx(l8, rel=1e-4)
  # Adam divides by sqrt(v), so reduction-order noise in a near-zero gradient entry can move
  # that one weight by up to ~lr per step: demand agreement on all but a handful of weights.
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p8)):
    assert np.mean(np.abs(a - b) > 1e-4) < 1e-3
    assert np.max(np.abs(a - b)) <= 3 * 2 * tiny_config.learning_rate


def test_unknown_dataset_and_missing_data_are_clear(tiny_config, tmp_path):
  tiny_config.dataset.name = 'imagenet22k'
  with pytest.raises(ValueError, match="unknown dataset 'imagenet22k'; choose one of"):
    train.train_and_evaluate(config_checks.prepare(tiny_config), str(tmp_path / 'a'))
  tiny_config.dataset.name, tiny_config.dataset.download = 'mnist', False
  with pytest.raises(FileNotFoundError, match=r"dataset 'mnist' is not prepared in .*isx.prepare_data"):
    train.train_and_evaluate(config_checks.prepare(tiny_config), str(tmp_path / 'b'))


def test_batch_not_divisible_by_devices(tiny_config, tmp_path):
  tiny_config.batch_size = 12
  with pytest.raises(ValueError, match='batch_size=12 is not divisible by the 8 devices'):
    train.train_and_evaluate(config_checks.prepare(tiny_config), str(tmp_path / 'a'))


def test_nonfinite_update_stops_before_any_save(tiny_config, tmp_path):
  # Step 1's loss is finite, but lr * (Adam step + decay) overflows float32: inf weights.
  tiny_config.learning_rate, tiny_config.warmup_steps = 3.4e38, 0
  tiny_config.checkpoint_every_steps = 1
  with pytest.raises(train.NonFiniteLossError,
                     match=r'non-finite at step 1; .*No checkpoint had been saved yet'):
    train.train_and_evaluate(config_checks.prepare(tiny_config), str(tmp_path / 'run'))
  assert os.listdir(tmp_path / 'run' / 'checkpoints') == []


def test_nonfinite_loss_names_the_last_good_checkpoint_and_keeps_it(tiny_config, tmp_path):
  from isx import config_checks
  workdir = str(tmp_path / 'run')
  tiny_config.num_train_steps = 3
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  tiny_config.num_train_steps = 9
  tiny_config.learning_rate = 1e30
  config_checks.save(tiny_config, workdir)  # as if the run had been started with this lr
  with pytest.raises(train.NonFiniteLossError, match=r'non-finite at step [45]; .*\(step 3\)'):
    train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == ['3']


def test_eval_outputs_in_dataset_order(tiny_config):
  exp = Experiment.create(tiny_config)
  out = evaluation.eval_outputs(exp, exp.state)
  np.testing.assert_array_equal(out['index'], np.arange(37))
  assert jnp.all(jnp.isfinite(out['embedding']))


def test_test_time_flip_scores_the_mean_of_the_image_and_its_mirror(tiny_config):
  exp = Experiment.create(tiny_config)
  batch = next(input_pipeline.eval_batches(tiny_config, exp.info))
  embed = lambda b: step_lib.embed_step(exp.state, b, config=tiny_config)
  plain, mirror = embed(batch), embed({**batch, 'image': batch['image'][:, :, ::-1]})
  tiny_config.dataset.test_time_flip = True
  both = embed(batch)
  for k in ('logits', 'embedding'):
    np.testing.assert_allclose(both[k], (plain[k] + mirror[k]) / 2, rtol=1e-5, atol=1e-6)
  assert not np.allclose(both['logits'], plain['logits'])


def test_ema_follows_its_recurrence_and_is_what_evals_score(tiny_config, tmp_path):
  tiny_config.ema_decay = 0.5
  exp = Experiment.create(tiny_config)
  state, ema = exp.state, jax.device_get(exp.state.params)
  batches = input_pipeline.train_batches(tiny_config, exp.info)
  for t in range(3):
    chunk = mesh_lib.to_global(jax.tree.map(lambda x: x[None], next(batches)),
                               mesh_lib.chunk_sharding(exp.mesh))
    state, _ = exp.train_fn(state, chunk, jax.random.key(1))
    d = min(0.5, (1 + t) / (10 + t))  # the ramp: 0.1, 0.18, 0.25
    ema = jax.tree.map(lambda e, p: d * e + (1 - d) * p, ema, jax.device_get(state.params))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               jax.device_get(optim.eval_params(state)), ema)
  batch = next(input_pipeline.eval_batches(tiny_config, exp.info))
  scored = step_lib.embed_step(state, batch, config=tiny_config)
  images = preprocess(batch['image'], tiny_config.dataset)
  logits = lambda params: state.apply_fn({'params': params}, images)['logits']
  np.testing.assert_allclose(scored['logits'], logits(optim.eval_params(state)), rtol=1e-5,
                             atol=1e-6)
  assert not np.allclose(scored['logits'], logits(state.params))
  # An evaluation builds no optimiser: it reads the EMA from the checkpoint as its weights.
  mngr = checkpointing.manager(str(tmp_path), writer=True)
  checkpointing.save(mngr, state, force=True)
  checkpointing.close(mngr)
  evaluating = Experiment.create(tiny_config, str(tmp_path), trains=False)
  checkpointing.close(evaluating.mngr)
  assert evaluating.restored == 3 and evaluating.state.opt_state is None
  assert evaluating.train_fn is None and evaluating.schedule is None
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               jax.device_get(evaluating.state.params), ema)
  np.testing.assert_allclose(evaluating.eval_fn(evaluating.state, mesh_lib.to_global(
      batch, evaluating.data_sharding))['logits'], scored['logits'], rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # GoogleNet's init and save: ~14 s
def test_an_evaluation_reads_the_batch_statistics_with_the_weights(tiny_config, tmp_path):
  from configs import default
  tiny_config.model = default.model('googlenet', embedding_dim=16, stem='cifar')  # BatchNorm
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  trained = Experiment.create(tiny_config, str(tmp_path), mesh=mesh, writer=True)
  moved = lambda tree, by: jax.tree.map(lambda x: x + by, tree)  # not what init gives
  state = trained.state.replace(step=trained.state.step + 7,
                                params=moved(trained.state.params, 0.5),
                                batch_stats=moved(trained.state.batch_stats, 0.25))
  checkpointing.save(trained.mngr, state, force=True)
  checkpointing.close(trained.mngr)
  evaluating = Experiment.create(tiny_config, str(tmp_path), mesh=mesh, trains=False)
  checkpointing.close(evaluating.mngr)
  assert evaluating.restored == 7 and evaluating.state.batch_stats
  for name in ('params', 'batch_stats'):
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(getattr(evaluating.state, name)),
                 jax.device_get(getattr(state, name)))


def test_without_ema_the_optimiser_state_is_as_before_and_evals_score_the_weights(tiny_config):
  exp = Experiment.create(tiny_config)
  assert optim.eval_params(exp.state) is exp.state.params
  tiny_config.ema_decay = 0.9
  with_ema = Experiment.create(tiny_config).state.opt_state
  assert len(jax.tree.leaves(with_ema)) == len(jax.tree.leaves(exp.state.opt_state)) + 1 + len(
      jax.tree.leaves(exp.state.params))  # the count and one copy of the weights
  tiny_config.ema_decay = 1.0
  with pytest.raises(errors.ConfigError, match=r'ema_decay must be 0 \(off\) or in \(0, 1\)'):
    config_checks.validate(tiny_config)


def test_constant_lr_without_warmup_trains_one_step_per_dispatch(tiny_config):
  # optax's constant schedule returns a Python float; the one-step path must still stack it.
  tiny_config.lr_schedule, tiny_config.warmup_steps = 'constant', 0
  exp = Experiment.create(tiny_config)
  batch = next(input_pipeline.train_batches(tiny_config, exp.info))
  _, metrics = exp.train_fn(exp.state, mesh_lib.to_global(jax.tree.map(lambda x: x[None], batch),
                                                          mesh_lib.chunk_sharding(exp.mesh)),
                            jax.random.key(1))
  assert metrics['learning_rate'].shape == (1,)
  assert float(metrics['learning_rate'][0]) == pytest.approx(tiny_config.learning_rate)


@pytest.mark.parametrize('loss_name', ['softmax+contrastive', 'softmax+center'])
def test_metric_losses_train_and_center_state_moves(tiny_config, loss_name):
  tiny_config.loss.name = loss_name
  exp = Experiment.create(tiny_config)
  state, before = exp.state, jax.device_get(exp.state.loss_state)
  batches = input_pipeline.train_batches(tiny_config, exp.info)
  for _ in range(2):
    state, metrics = exp.train_fn(state, mesh_lib.to_global(jax.tree.map(lambda x: x[None], next(
        batches)), mesh_lib.chunk_sharding(exp.mesh)), jax.random.key(1))
  term = 'loss_' + loss_name.split('+')[1]
  assert np.isfinite(float(metrics[term][0])) and float(metrics[term][0]) > 0
  if loss_name == 'softmax+center':
    assert state.loss_state['center'].shape == (10, tiny_config.model.embedding_dim)
    assert not np.allclose(np.asarray(state.loss_state['center']), before['center'])
  else:
    assert state.loss_state == {}


@pytest.mark.parametrize('name', ['constant', 'cosine', 'step'])
def test_lr_schedule_warms_up_linearly_then_follows_its_shape(name):
  from configs import default
  config = default.get_config()
  config.lr_schedule, config.warmup_steps, config.learning_rate = name, 200, 0.01
  lr = optim.learning_rate_schedule(config, total_steps=1000)
  np.testing.assert_allclose([lr(0), lr(100), lr(200)], [0.0, 0.005, 0.01], rtol=1e-6)
  after = {'constant': (0.01, 0.01), 'cosine': (0.005, 0.0), 'step': (1e-3, 1e-4)}[name]
  np.testing.assert_allclose([lr(600), lr(1000)], after, rtol=1e-5, atol=1e-9)


@pytest.mark.slow
def test_device_resident_and_host_fed_training_are_identical(tiny_config, tmp_path):
  tiny_config.num_train_steps = 8  # crosses the epoch boundary at step 6
  tiny_config.log_every_steps = tiny_config.evals.accuracy.every_steps = 4
  tiny_config.checkpoint_every_steps = 8
  params = []
  for resident, per_dispatch in ((True, 1), (False, 4)):  # host-fed batches stacked for a scan
    tiny_config.dataset.device_resident, tiny_config.steps_per_dispatch = resident, per_dispatch
    workdir = str(tmp_path / f'resident_{resident}')
    train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
    params.append(_params(workdir, tiny_config)[0])
  for a, b in zip(jax.tree.leaves(params[0]), jax.tree.leaves(params[1])):
    np.testing.assert_array_equal(a, b)


def test_sigint_and_sigterm_become_a_save_and_exit_flag():
  import signal
  saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
  try:
    for sig in (signal.SIGINT, signal.SIGTERM):
      signal.signal(signal.SIGTERM, saved[1])
      flag = train.StopSignals()
      assert not flag.should_stop(1)
      os.kill(os.getpid(), sig)
      assert flag.should_stop(2) and flag.name == sig.name
      # A signal after one training stops the next one of the process (isx.sweep, isx.tune).
      later = train.StopSignals()
      assert later.should_stop(1) and later.name == sig.name
  finally:
    signal.signal(signal.SIGINT, saved[0])
    signal.signal(signal.SIGTERM, saved[1])


def test_log_means_cover_every_step_since_the_last_log_and_resume_repeats_no_step(tiny_config,
                                                                                   tmp_path):
  from isx import metric_writers
  workdir = str(tmp_path / 'run')
  tiny_config.num_train_steps, tiny_config.log_every_steps = 4, 4
  tiny_config.checkpoint_every_steps = 1  # saves (and their finiteness checks) every step
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  record = [r for r in metric_writers.read_jsonl(workdir) if 'train/loss' in r][0]
  # The 200-step warm-up's lr at steps 0..3, averaged: the window is all 4 steps.
  assert record['train/learning_rate'] == pytest.approx(np.mean([0, 1, 2, 3]) / 200 * 0.01,
                                                        rel=1e-5)  # float32
  # A run that logged past its last checkpoint, then resumed: no step is logged twice.
  with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
    f.write(json.dumps({'step': 5, 'train/loss': 1.0}) + '\n')
  metric_writers.MetricWriter(workdir, resume_step=4).close()
  assert [r['step'] for r in metric_writers.read_jsonl(workdir)] == [4, 4]  # train/*, eval/*
  # A finished workdir run again, and evaluated again: still one eval record of its step.
  train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
  evaluation.evaluate_workdir(config_checks.prepare(tiny_config), workdir)
  records = metric_writers.read_jsonl(workdir)
  assert [(r['step'], sorted(r)[0].split('/')[0]) for r in records] == [(4, 'step'), (4, 'eval')]
  # A last line cut short by a killed process is left out, not an error.
  with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
    f.write('{"step": 5, "train/lo')
  assert metric_writers.read_jsonl(workdir) == records


def test_chunk_length_stops_at_every_boundary():
  periods = (5, 7, 100)
  for k in (1, 4, 8):
    s, visited = 0, []
    while s < 30:
      s += train.chunk_length(s, 30, k, periods)
      visited.append(s)
    boundaries = {b for b in range(1, 31) if b == 30 or any(b % p == 0 for p in periods)}
    assert boundaries <= set(visited) and visited[-1] == 30
  assert train.chunk_length(0, 30, 4, periods) == 4 and train.chunk_length(2, 30, 4, periods) == 1


@pytest.mark.slow
def test_fused_steps_give_bit_identical_params_logs_and_resume(tiny_config, tmp_path):
  # 20 steps cross 3 epoch boundaries; logs every 10, evals every 4, saves every 3 steps, so K=8
  # runs both fused chunks and single steps. A stop at 13 then resume goes through K=8 too.
  tiny_config.num_train_steps, tiny_config.log_every_steps = 20, 10
  from isx import metric_writers
  results = []
  for k, stops in ((1, ()), (8, ()), (8, (13,))):
    tiny_config.steps_per_dispatch = k
    workdir = str(tmp_path / f'k{k}_{len(stops)}')
    for stop in stops:
      tiny_config.num_train_steps = stop
      train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
    tiny_config.num_train_steps = 20
    metrics = train.train_and_evaluate(config_checks.prepare(tiny_config), workdir)
    records = [{k: v for k, v in r.items() if k != 'time' and 'steps_per_s' not in k}
               for r in metric_writers.read_jsonl(workdir)]
    results.append((_params(workdir, tiny_config)[0], records, metrics))
  (p1, r1, m1), (p8, r8, m8), (p_resumed, _, m_resumed) = results
  for a, b, c in zip(*map(jax.tree.leaves, (p1, p8, p_resumed))):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
  assert r1 == r8 and [r['step'] for r in r1 if 'train/loss' in r] == [10, 20]
  assert m1 == m8 == m_resumed


def test_the_rolled_loop_of_accelerators_equals_single_steps(tiny_config):
  # CPU unrolls K > 1 (see step.train_steps); GPUs and TPUs run the rolled lax.scan, asked here.
  # XLA:CPU runs a rolled loop's convolutions slowly: two steps of 8 images keep this test short.
  tiny_config.batch_size = 8
  info = input_pipeline.dataset_info(tiny_config)
  model = models.create_model(tiny_config.model, info.num_classes)
  objective = losses.Objective(tiny_config.loss, info.num_classes, model.embedding_dim)
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  schedule = optim.learning_rate_schedule(tiny_config, 10)
  train_fn = step_lib.compile_train_step(tiny_config, mesh, objective, schedule, unroll=False)
  it = input_pipeline.train_batches(tiny_config, info)
  batches = [next(it) for _ in range(2)]
  results = []
  for chunks in ([batches], [[b] for b in batches]):  # one rolled K=2 call, or two K=1 calls
    state = jax.device_put(step_lib.create_train_state(
        model, info.image_shape, objective, optim.make_optimizer(tiny_config, schedule),
        jax.random.key(0)),
                           mesh_lib.replicated(mesh))
    losses_ = []
    for chunk in chunks:
      stacked = mesh_lib.to_global(jax.tree.map(lambda *x: np.stack(x), *chunk),
                                   mesh_lib.chunk_sharding(mesh))
      if len(chunk) == 2:  # the loop really is rolled: one while loop, not two step bodies
        assert 'while' in train_fn.lower(state, stacked, jax.random.key(1)).as_text()
      state, metrics = train_fn(state, stacked, jax.random.key(1))
      losses_ += list(np.asarray(metrics['loss']))
    results.append((jax.device_get(state.params), losses_))
  (p_rolled, l_rolled), (p_single, l_single) = results
  np.testing.assert_array_equal(l_rolled, l_single)  # every step's loss, bit for bit
  # The parameters are not bit-identical: XLA:CPU fuses a loop body differently from a lone step,
  # which moves a few weights by one float32 ulp (measured: 7e-9 at most after 4 steps). A step
  # on a wrong batch or a skipped update moves them by ~1e-3.
  for a, b in zip(jax.tree.leaves(p_rolled), jax.tree.leaves(p_single)):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)


def test_each_plugin_is_resolved_once_per_run_as_isx_main_runs(tiny_config, tmp_path, monkeypatch):
  """isx.main validates once, before JAX starts, and hands the config and the dataset's info on:
  a run, fresh or resumed, resolves each plug-in's settings once."""
  import collections
  from isx import config_checks, registry
  real, calls = registry.resolve, collections.Counter()
  monkeypatch.setattr(registry, 'resolve',
                      lambda what, *args, **kwargs: calls.update([what]) or real(what, *args, **kwargs))
  tiny_config.num_train_steps = 2
  for _ in range(2):  # fresh, then resumed (its config compared with the workdir's)
    calls.clear()
    train.train_and_evaluate(config_checks.prepare(tiny_config), str(tmp_path / 'run'))
    assert calls and max(calls.values()) == 1, calls


def test_train_accuracy_of_a_margin_head_reads_its_scores_without_the_margin(tiny_config):
  """ArcFace's training logits carry the margin, so their argmax misses correct predictions:
  the logged accuracy is the argmax of the scores an eval would read."""
  tiny_config.model.head = {'name': 'arcface', 'scale': 30.0, 'margin': 1.5}
  info = input_pipeline.dataset_info(tiny_config)
  model = models.create_model(tiny_config.model, info.num_classes)
  objective = losses.Objective(tiny_config.loss, info.num_classes, model.embedding_dim)
  mesh = mesh_lib.make_mesh(jax.devices()[:1])
  schedule = optim.learning_rate_schedule(tiny_config, 10)
  state = jax.device_put(step_lib.create_train_state(
      model, info.image_shape, objective, optim.make_optimizer(tiny_config, schedule),
      jax.random.key(0)),
                         mesh_lib.replicated(mesh))
  batch = next(input_pipeline.train_batches(tiny_config, info))
  images = preprocess(batch['image'], tiny_config.dataset)
  # Class weights at the batch's class means of the embedding: most scores are then right.
  embedding = model.apply({'params': state.params}, images)['embedding']
  means = np.stack([np.mean(embedding[batch['label'] == c], 0) if np.any(batch['label'] == c)
                    else np.zeros(embedding.shape[1]) for c in range(info.num_classes)], 1)
  params = jax.device_get(state.params)
  params['classifier']['CosineHead_0']['kernel'] = means
  state = jax.device_put(state.replace(params=params), mesh_lib.replicated(mesh))
  outputs = model.apply({'params': state.params}, images, jnp.asarray(batch['label']))
  scores = model.apply({'params': state.params}, images)['logits']
  np.testing.assert_allclose(outputs['scores'], scores, rtol=1e-6)
  right = lambda logits: float(np.mean(np.argmax(logits, -1) == batch['label']))
  assert right(outputs['logits']) < right(scores)  # the margin hides correct predictions
  train_fn = step_lib.compile_train_step(tiny_config, mesh, objective, schedule)
  stacked = mesh_lib.to_global(jax.tree.map(lambda x: np.stack([x]), batch),
                               mesh_lib.chunk_sharding(mesh))
  _, metrics = train_fn(state, stacked, jax.random.key(1))
  assert float(metrics['accuracy'][0]) == pytest.approx(right(scores))
