"""SimpleNet + IS on glyphs: 155 classes of characters rendered from free fonts, the test split's
fonts from families that training never saw (isx/datasets/glyphs.py; docs/data.md). The default
recipe otherwise. RESULTS.md, "Glyphs", has what it measured.

python -m isx.prepare_data --dataset=glyphs --data_dir=workdirs/tfds
python -m isx.main --config=configs/glyphs_simplenet.py --workdir=workdirs/glyphs \
    --config.dataset.data_dir=workdirs/tfds
Baseline, the same recipe without the IS layer: configs/glyphs_simplenet.py:baseline
"""
from ml_collections import config_dict

from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = 'glyphs'
  # the spectrum's shares: in 4 directions, in the 76 that 77 trained classes' means can span,
  # and in the 154 of all 155 classes (RESULTS.md, "Glyphs")
  # accuracy's every_steps None: once per epoch (a placeholder: the command line can set it)
  c.evals = {'accuracy': {'every_steps': config_dict.placeholder(int)}, 'retrieval': {},
             'embedding_norm': {}, 'embedding_spectrum': {'top': (4, 76, 154)}}
  return default.variant(c, arg)
