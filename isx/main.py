"""Train: python -m isx.main --config=configs/NAME.py --workdir=DIR [--config.KEY=VALUE ...]

Re-running with the same workdir resumes from the newest good checkpoint; the run ends with the
evaluation (DIR/eval/metrics.json, embeddings.npz).
"""
from absl import app, flags

from isx import cli


def main(argv):
  def body():
    workdir, config = cli.workdir_flag(), cli.config_flag()
    if config is None:
      cli.fail('--config is required: --config=configs/NAME.py (see configs/)')
    from isx import config_checks, train
    prepared = config_checks.prepare(config)  # a bad config fails here, before JAX starts
    train.train_and_evaluate(prepared, workdir, cli.init_distributed(prepared))
  cli.run(argv, body)


flags.adopt_module_key_flags(cli)  # --help lists --config, --workdir and the cluster flags

if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
