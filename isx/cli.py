"""Flags, start-up and the error policy shared by isx.main, isx.eval, isx.sweep and
isx.prepare_data."""
import difflib
import errno
import os
import re
import sys
import traceback

from absl import app, flags, logging
from ml_collections import config_flags

from isx import errors

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'configs/NAME.py[:VARIANT]: the experiment '
                                 '(isx.eval: defaults to the one WORKDIR was trained with).',
                                 lock_config=True)
flags.DEFINE_string('workdir', None, 'Checkpoints, logs, metrics and plots go here.')
# Defined once here: isx.sweep and isx.tune both take it, and a process may import both.
flags.DEFINE_string('out', None, 'isx.sweep, isx.tune: the folder for the runs\' workdirs and '
                    'their records (runs_<shard>.jsonl; trials_<worker>.jsonl, best_grid.json).')
flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 (multi-process runs).')
flags.DEFINE_integer('num_processes', None, 'Number of processes (multi-process runs).')
flags.DEFINE_integer('process_id', None, 'This process (multi-process runs).')
flags.DEFINE_bool('jax_distributed', False, 'Call jax.distributed.initialize() with JAX\'s own '
                  'cluster detection (TPU pod workers, SLURM); launch/ scripts pass it.')
flags.DEFINE_integer('cpu_devices', None, 'Split the CPU into this many JAX devices (jax_num_cpu_'
                     'devices). Default for a one-process isx.main run: chosen with the '
                     'convolution path (--cpu_conv_path), 1 or the most cores, up to 8, that '
                     'divide batch_size and eval_batch_size. See BENCHMARKS.md.')
flags.DEFINE_enum('cpu_conv_path', None, ['auto', 'ynnpack', 'xla'], 'XLA:CPU convolutions: '
                  'ynnpack (XLA\'s default; one thread each, so the CPU is split into devices), '
                  'xla (XLA\'s own convolutions, multi-threaded; YNNPACK for dots and '
                  'reductions), or auto: the faster for this host and model, timed once and cached '
                  '(isx/cpu_setup.py). Default: $ISX_CPU_CONV_PATH, else auto. XLA_FLAGS that '
                  'choose a path win.')


def start():
  """What every binary does first. Quiet logs: what a user reads is the progress bar, one line
  per eval, the result and errors; library INFO logs (TFDS, Orbax, JAX) are hidden unless
  --verbosity is given (e.g. --verbosity=0). A persistent compilation cache: a launch reuses the
  steps that an earlier launch of the same config compiled (JAX's cache, in
  $ISX_CACHE_DIR/jax unless JAX_COMPILATION_CACHE_DIR names another folder; its key holds the
  XLA flags, so each CPU convolution path has its own entries). JAX_ENABLE_COMPILATION_CACHE=false
  turns it off."""
  if not os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    import jax
    from isx import cpu_setup
    jax.config.update('jax_compilation_cache_dir', os.path.join(cpu_setup.cache_dir(), 'jax'))
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
    # Orbax logs each failed write with its traceback before raising; isx reports the raised
    # error in one line instead.
    logging.get_absl_logger().addFilter(lambda record: '/orbax/' not in record.pathname)


def init_distributed(prepared=None):
  """Starts JAX: jax.distributed.initialize with the given flags; with --jax_distributed or
  inside a multi-task SLURM step, JAX's own cluster detection. A single process given a
  prepared config (config_checks.prepare) first chooses XLA:CPU's convolution path and device
  split for this host and model (isx.cpu_setup) and prints it; evaluation and multi-process runs
  only take a path or device count the user forced. Returns the CPU setup, or None."""
  import jax
  from isx import cpu_setup
  explicit = FLAGS.coordinator_address or FLAGS.num_processes or FLAGS.process_id is not None
  cluster = FLAGS.jax_distributed or int(os.environ.get('SLURM_STEP_NUM_TASKS', '1')) > 1
  if prepared is not None and not (explicit or cluster):
    setup = cpu_setup.set_up_for(prepared.config, prepared.info, FLAGS.cpu_conv_path,
                                 FLAGS.cpu_devices)
  else:  # before the first device query creates the backend
    setup = cpu_setup.set_up_as_asked(FLAGS.cpu_conv_path, FLAGS.cpu_devices)
  if (explicit or cluster) and os.environ.get('JAX_PLATFORMS') == 'cpu':
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # CPU collectives need it
  if explicit:
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  elif cluster:
    jax.distributed.initialize()
  logging.info('process %d of %d, %d local / %d global devices', jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  return setup


def parse_flags(argv):
  """absl's parser, but a bad --config (missing, a folder, not Python) or --config.KEY (typo,
  locked config, wrong type) is one line too, and --help exits 0."""
  if any(a in ('--help', '-h', '-?', '--helpshort') for a in argv[1:]):
    app.usage(shorthelp=True, writeto_stdout=True, exitcode=0)
  try:
    return FLAGS(argv)
  except SyntaxError as e:  # a config file that is not Python
    fail(f'cannot load --config: {e}')
  except OSError as e:  # a missing config file, met by a --config.KEY override
    fail(_load_error(e))
  except (flags.Error, KeyError, AttributeError, TypeError, ValueError) as e:
    key = isinstance(e, KeyError) and e.args and f'bad --config override: {e.args[0]}'
    fail(_missing_field(argv) or key or _config_traceback(str(e)) or e)


def _missing_field(argv):
  """For a --config.KEY override whose KEY the config lacks: which part is missing and what its
  parent holds, or None. The config is loaded again here: the flag holds none until every
  override has applied."""
  specs = [a.split('=', 1)[1] for a in argv[1:] if a.startswith('--config=')]
  try:
    config = FLAGS['config'].parser.parse(specs[-1])
  except Exception:  # noqa: BLE001  the config itself does not load: another message says so
    return None
  for arg in argv[1:]:
    if not arg.startswith('--config.'):
      continue
    node, parts = config, arg[len('--config.'):].split('=', 1)[0].split('.')
    for i, part in enumerate(parts):
      if not hasattr(node, 'keys'):
        break
      if part not in node:
        parent = '.'.join(parts[:i]) or 'the config'
        close = difflib.get_close_matches(part, list(node.keys()), n=1)
        hint = f'did you mean {close[0]!r}? ' if close else ''
        return (f'bad --config override --config.{".".join(parts)}: {parent} has no field '
                f'{part!r}; {hint}it has {", ".join(sorted(node.keys()))}. A plug-in\'s settings are '
                f'there once the config names it: --config=CONFIG.py:head=NAME (or loss=, '
                f'model=, evals=, dataset=)')
      node = node[part]
  return None


def _config_traceback(message: str):
  """ml_collections puts the whole traceback of a config's get_config in its message: the
  error itself and where in the config it was raised, or None for any other message."""
  if 'Traceback (most recent call last)' not in message:
    return None
  frames = [f for f in re.findall(r'File "([^"]+)", line (\d+)', message)
            if 'site-packages' not in f[0]]
  where = f' ({frames[-1][0]}, line {frames[-1][1]})' if frames else ''
  return f'cannot load --config: {message.strip().splitlines()[-1].strip()}{where}'


def workdir_flag() -> str:
  """--workdir; an empty one (an unset shell variable) would write into the current folder."""
  workdir = FLAGS.workdir
  if workdir is None or not workdir.strip():
    fail(f'--workdir is required and must not be empty (got {workdir!r}): name the run\'s '
         f'folder, e.g. --workdir=workdirs/NAME')
  return workdir


def config_flag():
  """--config, or None when it was not given. ml_collections defers a config file's load error
  (missing, a folder) until the config is first read: read it here, and fail in one line."""
  config = FLAGS.config
  try:
    getattr(config, 'seed', None)
  except OSError as e:
    fail(_load_error(e))
  return config


def _load_error(e: OSError) -> str:
  message = ' '.join(str(e).split())
  missing = re.search(r"No such file or directory: '([^']+)'", message)
  if missing:
    return f'cannot load --config: {missing.group(1)} not found; see configs/ for the configs'
  return 'cannot load --config: ' + message.replace('config_config', 'the config')


def run(argv, body):
  """Every binary's main: no stray arguments, start(), then body() under one error policy: a
  preempted run (a checkpoint saved) exits 1 with its message, for the same command to resume;
  an error a user fixes is one line (report); anything else keeps its traceback."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  start()
  try:
    return body()
  except errors.Preempted as e:
    stop(e)
  except Exception as e:  # noqa: BLE001  one line if the user can fix it, else the traceback
    report(e)
    raise


def stop(message):
  """The message on stderr and exit 1 (a scheduler requeues the job): a checkpoint was saved."""
  print(message, file=sys.stderr, flush=True)
  sys.exit(1)


def report(error: BaseException):
  """In a binary's `except Exception`: exits with one line when error is one a user fixes
  (isx.errors.UserError, or a full disk met anywhere); otherwise returns, and the binary
  re-raises it with its traceback."""
  if isinstance(error, errors.UserError) or (isinstance(error, OSError) and
                                             error.errno == errno.ENOSPC):
    fail(error)


def fail(error):
  """One line on stderr and a non-zero exit, instead of a traceback, for errors a user fixes;
  ISX_TRACEBACK=1 prints the traceback of the error being handled too."""
  if os.environ.get('ISX_TRACEBACK') == '1' and sys.exc_info()[0] is not None:
    traceback.print_exc()
  if isinstance(error, OSError) and error.errno == errno.ENOSPC:  # a write isx did not name
    where = f' writing {error.filename}' if error.filename else ''
    error = (f'no space left on the device{where}; free some space or choose another '
             f'--workdir. Saved checkpoints are kept')
  print('error: ' + ' '.join(str(error).split()), file=sys.stderr, flush=True)
  sys.exit(1)


def run_script(main):
  """The error policy of the results and benchmark scripts (argparse, not absl): an isx error,
  an unwritable or full disk, is one line naming the file and what to do, exit 1; anything else
  keeps its traceback."""
  try:
    main()
  except Exception as e:  # noqa: BLE001
    report(e)
    if isinstance(e, OSError) and e.filename and e.errno in (errno.EACCES, errno.ENOENT,
                                                             errno.EISDIR, errno.ENOTDIR):
      fail(f'{e.filename}: {e.strerror}; check the path given')
    raise
