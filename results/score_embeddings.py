"""Scores the saved embeddings of a sweep's runs with evals, without the models: each run's
OUT/NAME_SEED/eval/embeddings.npz (what isx.eval and isx.main write) through the evals' own
compute functions, one JSON record per run.

  python results/score_embeddings.py --runs=OUT --out=results/raw/STUDY_spectrum.jsonl \
      [--evals=embedding_spectrum]

Used for the tuned studies' embedding spectra (RESULTS.md): the finals' workdirs are not kept,
their records are.
"""
import argparse
import glob
import json
import os
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from isx import cli, errors, evals  # noqa: E402


def score(path: str, names) -> dict:
  try:
    with np.load(path) as data:  # the file's names are plural; the evals' outputs singular
      outputs = {'embedding': data['embeddings'], 'label': data['labels'],
                 'logits': data['logits']}
      split = str(data['split']) if 'split' in data.files else 'test'  # older isx: test only
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    raise errors.UserError(f'{path} cannot be read ({type(e).__name__}: '
                           f'{" ".join(str(e).split())[:150]}); score it again with python -m '
                           f'isx.eval --workdir={os.path.dirname(os.path.dirname(path))}') from None
  settings = evals.resolve({name: {} for name in names})
  return {'evals': settings, 'split': split, 'examples': int(len(outputs['label'])),
          'classes': sorted(int(c) for c in np.unique(outputs['label'])),
          'metrics': evals.compute(outputs, settings)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--runs', required=True, help="a sweep's --out: NAME_SEED/ workdirs")
  parser.add_argument('--out', required=True, help='the JSON-lines file to write')
  parser.add_argument('--evals', default='embedding_spectrum', help='names joined by +')
  args = parser.parse_args()
  if not os.path.isdir(args.runs):
    raise errors.NotFound(f'--runs {args.runs} is not a folder; give the --out of the sweep '
                          f'whose runs to score')
  paths = sorted(glob.glob(os.path.join(args.runs, '*_*', 'eval', 'embeddings.npz')))
  if not paths:
    raise errors.NotFound(f'--runs {args.runs} holds no NAME_SEED/eval/embeddings.npz; give the '
                          f'--out of a sweep whose runs were evaluated ({args.out} is unchanged)')
  records = []
  for path in paths:
    name, _, seed = os.path.basename(os.path.dirname(os.path.dirname(path))).rpartition('_')
    records.append({'name': name, 'seed': int(seed), **score(path, args.evals.split('+'))})
  # Written whole beside the file, then moved over it: an error or a kill never leaves it empty.
  with open(args.out + '.tmp', 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in records)
  os.replace(args.out + '.tmp', args.out)
  print(f'{args.out}: {len(records)} runs scored')


if __name__ == '__main__':
  cli.run_script(main)
