"""Evaluate: python -m isx.eval --workdir=DIR [--config=configs/NAME.py --config.KEY=VALUE ...]

Restores the newest good checkpoint in DIR and writes DIR/eval/metrics.json and embeddings.npz.
Without --config it uses the config DIR was trained with (DIR/config.json); with one, the config
must agree with it except in the fields listed in isx.config_checks.MAY_DIFFER.
"""
from absl import app

from isx import cli


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.init_distributed()
  from isx import config_checks, evaluate, train
  try:
    config = cli.FLAGS.config or config_checks.saved_config(cli.FLAGS.workdir)
    metrics = train.evaluate_checkpoint(config, cli.FLAGS.workdir)
  except (ValueError, FileNotFoundError, PermissionError) as e:
    cli.fail(e)
  print(evaluate.summary(metrics, tuple(config.retrieval_ks)), flush=True)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
