"""Evaluate: python -m isx.eval --config=configs/NAME.py --workdir=DIR

Restores the newest good checkpoint in DIR and writes DIR/eval/metrics.json and embeddings.npz.
"""
from absl import app

from isx import cli


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cli.init_distributed()
  from isx import evaluate, step, train
  config, workdir = cli.FLAGS.config, cli.FLAGS.workdir
  try:
    env = train.setup(config, workdir)
    if env['restored'] is None:
      raise FileNotFoundError(f'no checkpoint in {env["mngr"].directory}; train first with '
                              f'python -m isx.main --config=... --workdir={workdir}')
    metrics = evaluate.evaluate_state(config, env['state'], env['eval_fn'], env['info'],
                                      step.data_sharding(env['mesh']), workdir)
  except (ValueError, FileNotFoundError, PermissionError) as e:
    cli.fail(e)
  print(evaluate.summary(metrics, tuple(config.retrieval_ks)), flush=True)


if __name__ == '__main__':
  app.run(main)
