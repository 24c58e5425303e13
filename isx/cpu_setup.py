"""XLA:CPU's convolution path and device split, chosen for this host and model before JAX starts.

XLA:CPU has two ways to run a convolution, and which is faster depends on the host *and* on the
model (benchmarks/bench_train.py times both):
- 'ynnpack', XLA's default: convolutions fused into YNNPACK calls, each on one thread, so a step
  uses several cores only when the CPU is split into devices (data parallel);
- 'xla': XLA's own Eigen convolutions, which use every core within one device, with YNNPACK kept
  for dots and reductions (--xla_cpu_experimental_ynn_fusion_type=individual_dot,reduce). Turning
  every YNNPACK fusion off (the flag's empty value) made float32 dots ~1.9x slower on an AVX-512
  host and the exact k-NN (dots and max-reductions) 1.3x slower, at no gain in training.
On an AVX2-only AMD EPYC, SimpleNet's step is ~3x faster on 'xla' at 1 device while GoogleNet's
is ~1.7x slower, so no rule on CPU features fits both. isx measures instead: one probe process
per candidate (path, devices) times a few train steps of the run's own model and batch size
(python -m isx.cpu_probe), and the fastest is cached per host (CPU model and flags, usable
cores, jaxlib) and model in ~/.cache/isx/cpu_setup.json ($ISX_CACHE_DIR), so a host pays once.

The user's choice always wins: a path forced with --cpu_conv_path (or $ISX_CPU_CONV_PATH), a
path flag already in XLA_FLAGS, a device count from --cpu_devices, XLA_FLAGS or
jax_num_cpu_devices. GPU and TPU hosts, and multi-process runs, are left as they are.
"""
import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile

import jax

from isx import errors

PATHS = {'ynnpack': '', 'xla': '--xla_cpu_experimental_ynn_fusion_type=individual_dot,reduce'}
PATH_NAMES = {'ynnpack': "YNNPACK convolutions (XLA's default)",
              'xla': "XLA's own convolutions (YNNPACK for dots and reductions)"}
# XLA_FLAGS that choose a convolution path: when the user gives one, isx does not choose.
PATH_FLAGS = ('xla_cpu_experimental_ynn_fusion_type', 'xla_cpu_experimental_xnn_fusion_type',
              'xla_cpu_use_onednn', 'xla_cpu_experimental_onednn_fusion_type', 'xla_cpu_use_xnnpack')
DEVICE_FLAG = 'xla_force_host_platform_device_count'
MAX_AUTO_CPU_DEVICES = 8  # each CPU device holds its own copy of a device-resident train split
_ACCELERATOR_PLUGINS = ('jax-cuda12-plugin', 'jax-cuda13-plugin', 'libtpu', 'jax-rocm6-plugin',
                        'jax-rocm7-plugin')


def auto_cpu_devices(batch_sizes, cores: int) -> int:
  """The most devices, up to min(cores, MAX_AUTO_CPU_DEVICES), that divide every batch size:
  YNNPACK runs each convolution on one thread, so a step over N devices uses N cores."""
  top = max(1, min(cores, MAX_AUTO_CPU_DEVICES))
  return max(d for d in range(1, top + 1) if all(b % d == 0 for b in batch_sizes))


def usable_cores() -> int:
  affinity = getattr(os, 'sched_getaffinity', None)  # Linux: honours taskset and cgroups' cpusets
  return len(affinity(0)) if affinity else os.cpu_count() or 1


def _xla_flags() -> str:
  return os.environ.get('XLA_FLAGS', '')


def user_devices() -> int | None:
  """A device count the user set (XLA_FLAGS or jax_num_cpu_devices), or None."""
  for flag in _xla_flags().split():
    if flag.lstrip('-').startswith(DEVICE_FLAG + '='):
      return int(flag.split('=', 1)[1])
  return None if jax.config.jax_num_cpu_devices == -1 else jax.config.jax_num_cpu_devices


def user_path_flags() -> list[str]:
  return [f for f in _xla_flags().split() if f.lstrip('-').split('=')[0] in PATH_FLAGS]


def accelerator_host() -> bool:
  """Whether JAX will start on a GPU or TPU (then the CPU setup does not matter). Decided
  without starting JAX: JAX_PLATFORMS, else whether an accelerator plugin is installed."""
  platforms = jax.config.jax_platforms or os.environ.get('JAX_PLATFORMS', '')
  if platforms:
    return platforms.split(',')[0].strip() != 'cpu'
  for dist in _ACCELERATOR_PLUGINS:
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
      importlib.metadata.version(dist)
      return True
  return False


def host_key() -> dict:
  """What makes timings of one host comparable: CPU model and feature flags, cores, jaxlib."""
  model, flags = 'unknown', ''
  with contextlib.suppress(OSError):
    with open('/proc/cpuinfo') as f:
      for line in f:
        key, _, value = line.partition(':')
        if key.strip() == 'model name' and model == 'unknown':
          model = value.strip()
        elif key.strip() in ('flags', 'Features') and not flags:
          flags = value.strip()
  return {'cpu': model, 'cpu_flags_sha1': hashlib.sha1(flags.encode()).hexdigest()[:12],
          'avx512': 'avx512f' in flags.split(), 'amx_bf16': 'amx_bf16' in flags.split(),
          'cores': usable_cores(),
          'jaxlib': importlib.metadata.version('jaxlib')}


@dataclasses.dataclass
class Setup:
  """The chosen XLA:CPU setup: path None = untouched (the user's or not a CPU), devices None =
  JAX's default count. `timings`: probe ms per step by candidate 'path/devices'."""
  path: str | None
  devices: int | None
  reason: str
  timings: dict = dataclasses.field(default_factory=dict)

  def line(self) -> str:
    what = PATH_NAMES.get(self.path, 'convolution path as XLA_FLAGS give it')
    count = f'{self.devices} device{"s" * (self.devices != 1)}' if self.devices else 'JAX default devices'
    return f'XLA:CPU: {what}, {count}: {self.reason}'

  def record(self) -> dict:
    return {**dataclasses.asdict(self), 'xla_flags': _xla_flags(), 'host': host_key()}


def candidates(split: int, devices: int | None, path: str | None) -> list[tuple[str, int]]:
  """(path, devices) pairs worth timing. YNNPACK is single-threaded per convolution, so it only
  runs split (on 1 device it is never the fastest); XLA's own convolutions also run on 1 device."""
  paths = [path] if path else list(PATHS)
  pairs = []
  for p in paths:
    counts = [devices] if devices else ([split] if p == 'ynnpack' else sorted({1, split}))
    pairs += [(p, d) for d in counts]
  return pairs


def cache_dir() -> str:
  """isx's per-user cache: $ISX_CACHE_DIR, else ~/.cache/isx (or $XDG_CACHE_HOME/isx)."""
  return os.environ.get('ISX_CACHE_DIR') or os.path.join(
      os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'isx')


def cache_file() -> str:
  return os.path.join(cache_dir(), 'cpu_setup.json')


@contextlib.contextmanager
def locked_cache():
  """The cache as a dict, under a file lock: sweep shards starting together probe one at a
  time (a probe timed beside another would be wrong) and then all read the result."""
  path = cache_file()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + '.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      with open(path) as f:
        cache = json.load(f)
    except (OSError, ValueError):
      cache = {}
    before = json.dumps(cache, sort_keys=True)
    yield cache
    if json.dumps(cache, sort_keys=True) != before:
      with tempfile.NamedTemporaryFile('w', dir=os.path.dirname(path), delete=False) as f:
        json.dump(cache, f, indent=1, sort_keys=True)
      os.replace(f.name, path)


def probe(workload: dict, path: str, devices: int, cores: int) -> float:
  """The fastest ms per train step of workload on (path, devices), in a fresh process limited to
  `cores` cores (XLA reads its flags and device count once, when it starts)."""
  flags = [f for f in _xla_flags().split() if not f.lstrip('-').startswith(DEVICE_FLAG + '=')]
  env = {**os.environ, 'XLA_FLAGS': ' '.join(flags + [PATHS[path],
                                                       f'--{DEVICE_FLAG}={devices}']).strip(),
         'JAX_PLATFORMS': 'cpu'}
  env.pop('JAX_NUM_CPU_DEVICES', None)
  p = subprocess.run([sys.executable, '-m', 'isx.cpu_probe', f'--cores={cores}'],
                     input=json.dumps(workload), env=env, capture_output=True, text=True,
                     timeout=1800)
  lines = p.stdout.strip().splitlines()
  if p.returncode or not lines:
    err = ' '.join((p.stderr.strip().splitlines() or ['no output'])[-1].split())
    raise RuntimeError(f'the XLA:CPU probe for {path}/{devices} failed: {err}')
  return float(json.loads(lines[-1])['ms_per_step'])


def measure(workload: dict, pairs, cores: int, log=print) -> dict:
  timings = {}
  for path, devices in pairs:
    timings[f'{path}/{devices}'] = round(probe(workload, path, devices, cores), 1)
  log('XLA:CPU probe (ms per train step): ' +
      ', '.join(f'{k} {v:g}' for k, v in timings.items()))
  return timings


def workload(config, image_shape, num_classes) -> dict:
  """What a probe trains (the whole config, with the data's shape) and the part of it that
  sets a step's cost, which keys the cache (seeds, paths and run lengths do not)."""
  full = json.loads(config.to_json_best_effort())
  key = {k: full[k] for k in ('model', 'loss', 'batch_size', 'weight_decay_form')}
  key['data'] = [list(image_shape), num_classes, config.dataset.augment,
                 config.dataset.standardize]
  return {'config': full, 'image_shape': list(image_shape), 'num_classes': num_classes,
          'key': key}


def choose(workload: dict, batch_sizes, path: str = 'auto', devices: int | None = None,
           share: int = 1, log=print) -> Setup:
  """The setup for this process. `path`: 'auto' (measure, cached), 'ynnpack' or 'xla';
  `devices`: a count the user chose (else XLA_FLAGS', else chosen); `share`: processes of one
  sweep on this machine, which split its cores among them."""
  if path not in ('auto', *PATHS):
    raise errors.ConfigError(f'unknown --cpu_conv_path {path!r}; choose auto, {", ".join(PATHS)}')
  if accelerator_host():
    return Setup(None, None, 'not a CPU run (JAX_PLATFORMS or an accelerator plugin): untouched')
  cores = max(usable_cores() // max(share, 1), 1)
  devices = devices or user_devices()
  split = auto_cpu_devices(batch_sizes, cores)
  fixed_path = None if path == 'auto' else path
  if user_path_flags():  # they win, over --cpu_conv_path too
    ignored = f' (not --cpu_conv_path={path})' if fixed_path else ''
    return Setup(None, devices or split, f'your XLA_FLAGS choose the convolution path{ignored}' +
                 ('' if devices else f'; split into the most of {cores} cores that divide the '
                  f'batch sizes'))
  pairs = candidates(split, devices, fixed_path)
  if devices and any(b % devices for b in batch_sizes):  # refused once JAX starts; not timed
    pairs = pairs[:1]
  if len(pairs) == 1:
    (p, d), = pairs
    return Setup(p, d, f'{p} as asked' if fixed_path else 'the only candidate')
  host = host_key()
  key = json.dumps({'host': host, 'share': share, 'workload': workload['key'], 'paths': PATHS},
                   sort_keys=True)
  digest = hashlib.sha1(key.encode()).hexdigest()
  with locked_cache() as cache:
    entry = cache.get(digest)
    cached = entry is not None and all(f'{p}/{d}' in entry['timings'] for p, d in pairs)
    if not cached:
      log(f'XLA:CPU: timing {len(pairs)} setups of this model on this host, once '
          f'(cached in {cache_file()}) ...')
      # Others' work skews the timing and can pick the slower path: the load is kept with it,
      # and shown, so that a choice measured on a busy host can be seen and timed again.
      load = round(os.getloadavg()[0], 1)
      try:
        timings = measure(workload, pairs, cores, log)
      except (RuntimeError, subprocess.TimeoutExpired) as e:  # never stops a training
        return Setup('ynnpack', devices or split, f'XLA\'s default, since {e}')
      entry = cache[digest] = {'timings': {**(entry or {}).get('timings', {}), **timings},
                               'host': host, 'workload': workload['key'], 'load': load}
  timings = {f'{p}/{d}': entry['timings'][f'{p}/{d}'] for p, d in pairs}
  best = min(timings, key=timings.get)
  p, d = best.split('/')
  shown = ', '.join(f'{k} {v:g}' for k, v in sorted(timings.items(), key=lambda kv: kv[1]))
  how = 'cached measurement' if cached else 'measured now'
  if entry.get('load') is not None:
    how += f' at load {entry["load"]:.1f} on {usable_cores()} cores'
  return Setup(p, int(d), f'fastest for this model on this host ({how}, ms per step: {shown})',
               timings)


def jax_started() -> bool:
  """Whether JAX's backend has started (its path and devices can no longer be chosen)."""
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  return xla_bridge.backends_are_initialized()


def apply(setup: Setup):
  """Sets the chosen path in XLA_FLAGS and the device count, before JAX's backend starts."""
  if jax_started():
    raise RuntimeError('the XLA:CPU setup must be applied before JAX starts its backend')
  if setup.path:
    os.environ['XLA_FLAGS'] = ' '.join([_xla_flags(), PATHS[setup.path]]).strip()
  if setup.devices:  # (over XLA_FLAGS' count, as --cpu_devices is meant to be)
    jax.config.update('jax_num_cpu_devices', setup.devices)


def set_up_for(config, info, path=None, devices=None, share=1, batch_sizes=None):
  """What isx.main, isx.sweep and isx.tune call before JAX starts: set_up for config's model on
  its dataset (info), printed; None when JAX has started already (a caller keeps its own)."""
  if jax_started():
    return None
  return set_up(config, info.image_shape, info.num_classes, path, devices, share, batch_sizes,
                log=lambda m: print(m, flush=True))


def set_up(config, image_shape, num_classes, path=None, devices=None, share=1, batch_sizes=None,
           log=print) -> Setup:
  """What isx.main, isx.sweep and the benchmarks call before JAX starts: chooses the setup for
  config's model on these images (path None: $ISX_CPU_CONV_PATH, else auto), applies it and
  logs its one line."""
  setup = choose(workload(config, image_shape, num_classes),
                 batch_sizes or (config.batch_size, config.eval_batch_size),
                 path or os.environ.get('ISX_CPU_CONV_PATH') or 'auto', devices, share, log)
  apply(setup)
  log(setup.line())
  return setup


def set_up_as_asked(path=None, devices=None) -> Setup | None:
  """For runs that do not choose (isx.eval, multi-process runs): only what the user asked for,
  a forced path (flag or $ISX_CPU_CONV_PATH) and a device count; 'auto' leaves XLA's default."""
  path = path or os.environ.get('ISX_CPU_CONV_PATH') or 'auto'
  if path not in ('auto', *PATHS):
    raise errors.ConfigError(f'unknown --cpu_conv_path {path!r}; choose auto, {", ".join(PATHS)}')
  forced = path != 'auto' and not accelerator_host() and not user_path_flags()
  if not forced and not devices:
    return None
  setup = Setup(path if forced else None, devices, 'as asked')
  apply(setup)
  return setup
