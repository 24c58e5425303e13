"""Evaluate: python -m isx.eval --config=configs/NAME.py --workdir=DIR

Restores the newest good checkpoint in DIR and writes DIR/eval/metrics.json and embeddings.npz.
"""
from absl import app

from isx import cli


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.init_distributed()
  from isx import evaluate, train
  config = cli.FLAGS.config
  try:
    metrics = train.evaluate_checkpoint(config, cli.FLAGS.workdir)
  except (ValueError, FileNotFoundError, PermissionError) as e:
    cli.fail(e)
  print(evaluate.summary(metrics, tuple(config.retrieval_ks)), flush=True)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
