"""Train: python -m isx.main --config=configs/NAME.py --workdir=DIR [--config.KEY=VALUE ...]

Re-running with the same workdir resumes from the newest good checkpoint; the run ends with the
evaluation (DIR/eval/metrics.json, embeddings.npz).
"""
from absl import app, flags

from isx import cli

def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.start()
  workdir = cli.workdir_flag()
  config = cli.config_flag()
  if config is None:
    cli.fail('--config is required: --config=configs/NAME.py (see configs/)')
  from isx import train
  try:
    config, info, cpu = cli.init_distributed(config)
    train.train_and_evaluate(config, workdir, cpu, info)
  except train.Preempted as e:
    cli.stop(e)
  except Exception as e:  # noqa: BLE001  one line if the user can fix it, else the traceback
    cli.report(e)
    raise


flags.adopt_module_key_flags(cli)  # --help lists --config, --workdir and the cluster flags

if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
