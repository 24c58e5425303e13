"""Evaluate: python -m isx.eval --workdir=DIR [--config=configs/NAME.py --config.KEY=VALUE ...]

Restores the newest good checkpoint in DIR and writes DIR/eval/metrics.json and embeddings.npz.
Without --config it uses the config DIR was trained with (DIR/config.json); with one, the config
must agree with it except where isx.config_checks.may_differ allows (paths, logging, evals).
"""
from absl import app, flags

from isx import cli


def main(argv):
  def body():
    workdir = cli.workdir_flag()
    from isx import config_checks, evaluation
    cli.init_distributed()
    config = cli.config_flag() or config_checks.saved_config(workdir)
    evaluation.evaluate_workdir(config_checks.prepare(config), workdir)
  cli.run(argv, body)


flags.adopt_module_key_flags(cli)  # --help lists --config, --workdir and the cluster flags

if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
