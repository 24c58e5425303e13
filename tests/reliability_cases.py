"""Bad inputs and the one line each must get: the table tests/test_reliability.py runs as real
processes and docs/reliability.md's "Bad input" table is generated from (`python tests/reliability_cases.py`).

Placeholders: {data} a tiny prepared data_dir, {done} a finished workdir (2 steps, evaluated),
{new} a workdir that must not be created, {empty} an empty data_dir, {bad_py} a config file
with a syntax error, {grid} a valid 1-run sweep grid, {typo_grid} a grid with a mistyped key,
{eval_file} a finished workdir whose eval/ is a file, {bad_json} a finished workdir whose
config.json is damaged, {space} a valid isx.tune space, {typo_space} one with a mistyped key,
{empty_space} one with an empty range, {batch_space} one that tunes batch_size over 16 and 18. A --config among a case's arguments replaces the common one (overrides
apply to the config named first). Every case must exit 1, print exactly one
`error:` line that holds the expected text (`...` stands for anything) and no traceback, create
no {new}, add nothing to the repository's top folder (the current one) and leave {done}
byte-for-byte unchanged. Downloads go to a closed local port (ISX_DATASET_SOURCES).
"""
import re

CASES = [
    # (case, binary, arguments after the common ones, the error line: literal, ... = anything)
    ('config key typo', 'main', ['--workdir={new}', '--config.modell.xi=1'],
     "bad --config override --config.modell.xi: the config has no field 'modell'; did you mean "
     "'model'? it has ..."),
    ('a setting of an eval the config does not name yet', 'main',
     ['--workdir={new}', '--config.evals.map_at_k.k=3'],
     "bad --config override --config.evals.map_at_k.k: evals has no field 'map_at_k'; it has "
     "accuracy, embedding_norm, retrieval. ..."),
    ('config file missing', 'main', ['--workdir={new}', '--config=configs/no_such.py'],
     'cannot load --config: configs/no_such.py not found; see configs/ for the configs'),
    ('a setting the plug-in does not take', 'main',
     ['--workdir={new}', '--config.model.head.margin=0.3'],
     "bad --config override --config.model.head.margin: model.head has no field 'margin'; it "
     "has name. A plug-in's settings are there once the config names it: ...:head=NAME..."),
    ('config is a folder', 'main', ['--workdir={new}', '--config=configs'],
     'cannot load --config: ...Is a directory'),
    ('config is not Python', 'main', ['--workdir={new}', '--config={bad_py}'],
     'cannot load --config: invalid syntax'),
    ('xi = 0', 'main', ['--workdir={new}', '--config.model.xi=0'],
     'xi must be a positive finite number, got 0.0'),
    ('negative learning rate', 'main', ['--workdir={new}', '--config.learning_rate=-1'],
     'learning_rate must be a positive finite number, got -1.0'),
    ('batch size 0', 'main', ['--workdir={new}', '--config.batch_size=0'],
     'batch_size must be a positive integer, got 0'),
    ('num_train_steps 0', 'main', ['--workdir={new}', '--config.num_train_steps=0'],
     'num_train_steps must be a positive integer, got 0, or None to use num_epochs'),
    ('steps_per_dispatch 0', 'main', ['--workdir={new}', '--config.steps_per_dispatch=0'],
     'steps_per_dispatch must be a positive integer, got 0'),
    ('batch not divisible by --cpu_devices', 'main', ['--workdir={new}', '--cpu_devices=3'],
     'batch_size=16 is not divisible by the 3 devices (1 processes); use a multiple of 3'),
    ('unknown model', 'main', ['--workdir={new}', '--config.model.name=resnet'],
     "unknown model 'resnet'; choose one of ..."),
    ('a field the model does not take', 'main', ['--workdir={new}', '--config.model.name=lenet'],
     "model 'lenet' does not take model.conv_activation, model.widths; it takes ... :model=lenet)"),
    ('unknown compute dtype', 'main', ['--workdir={new}', '--config.model.dtype=float16'],
     "unknown model.dtype 'float16'; choose one of float32, bfloat16"),
    ('retrieval ks beyond the eval split', 'main',
     ['--workdir={new}', '--config.evals.retrieval.ks=(1, 40)'],
     'evals.retrieval.ks (1, 40) asks for more neighbours than the 36 other examples'),
    ('a plug-in setting out of range', 'main',
     ['--workdir={new}', '--config.evals.retrieval.block_size=0'],
     'evals.retrieval.block_size must be positive, got 0'),
    ('a head scale that is not positive', 'main',
     ['--workdir={new}', '--config=configs/fashion_mnist_simplenet.py:head=normface',
      '--config.model.head.scale=0'],
     "head 'normface' (model.head): scale must be > 0, got 0.0"),
    ('a CosFace margin out of its range', 'main',
     ['--workdir={new}', '--config=configs/fashion_mnist_simplenet.py:head=cosface',
      '--config.model.head.margin=1.5'],
     "head 'cosface' (model.head): margin must be in [0, 1) ...got 1.5"),
    ('an ArcFace margin out of its range', 'main',
     ['--workdir={new}', '--config=configs/fashion_mnist_simplenet.py:head=arcface',
      '--config.model.head.margin=-0.1'],
     "head 'arcface' (model.head): margin must be in [0, pi/2) radians ...got -0.1"),
    ('a center-loss alpha out of (0, 1]', 'main',
     ['--workdir={new}', '--config=configs/fashion_mnist_simplenet.py:loss=softmax+center',
      '--config.loss.center.alpha=-1.0'],
     "loss 'center' (loss.center): alpha must be in (0, 1], got -1.0"),
    ('a contrastive margin that is not positive', 'main',
     ['--workdir={new}', '--config=configs/fashion_mnist_simplenet.py:loss=softmax+contrastive',
      '--config.loss.contrastive.margin=0'],
     "loss 'contrastive' (loss.contrastive): margin must be > 0 ...got 0.0"),
    ('a negative loss weight', 'main', ['--workdir={new}', '--config.loss.softmax.weight=-1'],
     'loss.softmax.weight must be >= 0, got -1.0'),
    ('dataset.data_dir is a file', 'main', ['--workdir={new}', '--config.dataset.data_dir={bad_py}'],
     'dataset.data_dir ...bad.py is a file, not a folder: point --config.dataset.data_dir at the '
     'folder...'),
    ('a damaged WORKDIR/config.json (train)', 'main', ['--workdir={bad_json}'],
     '.../config.json is damaged (not the JSON of a config: ...); ...restore it from a copy, or '
     'remove it...'),
    ('a damaged WORKDIR/config.json (eval)', 'eval', ['--workdir={bad_json}'],
     '.../config.json is damaged (not the JSON of a config: ...)'),
    ('a class spec naming a class the dataset lacks', 'main',
     ['--workdir={new}', '--config.dataset.classes=0-12'],
     "dataset.classes '0-12' names classes the dataset lacks (10, 11, 12); it has classes 0-9"),
    ('a class spec naming every class', 'main', ['--workdir={new}', '--config.dataset.classes=0-9'],
     "dataset.classes '0-9' names every class, so none is held out; write 'all' for that"),
    ('a class spec naming no class', 'main', ['--workdir={new}', '--config.dataset.classes=,'],
     "dataset.classes ',' names no class; name the classes to train on"),
    ('scoring a validation split that is not set', 'main',
     ['--workdir={new}', '--config.dataset.eval_split=validation'],
     "dataset.eval_split='validation' needs a validation split: set dataset.validation_classes or "
     "dataset.validation_fraction"),
    ('unknown dataset', 'main', ['--workdir={new}', '--config.dataset.name=imagenet22k'],
     "unknown dataset 'imagenet22k'; choose one of"),
    ('dataset not prepared (offline)', 'main',
     ['--workdir={new}', '--config.dataset.data_dir={empty}', '--config.dataset.download=False'],
     "dataset 'fashion_mnist' is not prepared in ...isx.prepare_data"),
    ('glyphs: an unknown character set', 'main',
     ['--workdir={new}', '--config=configs/glyphs_simplenet.py', '--config.dataset.data_dir={empty}',
      '--config.dataset.charsets=latin+klingon'],
     "unknown character set(s) ['klingon'] in charsets; choose '+'-joined names from ..."),
    ('glyphs: a font dir that is a file', 'main',
     ['--workdir={new}', '--config=configs/glyphs_simplenet.py', '--config.dataset.data_dir={empty}',
      '--config.dataset.font_dir={bad_py}'],
     '--font_dir ...bad.py is a file: give the folder that holds the fonts'),
    ('resume with another model', 'main', ['--workdir={done}', '--config.model.xi=10'],
     'cannot resume: ... was trained with another config; differing: model.xi (100.0 -> 10.0)'),
    ('eval with another model', 'eval', ['--workdir={done}', '--config.model.inward_scale=False'],
     'cannot evaluate: ... was trained with another config; differing: model.inward_scale'),
    ('eval of a mistyped workdir', 'eval', ['--workdir={new}'],
     'no checkpoint in .../checkpoints; train first with python -m isx.main'),
    ('empty --workdir (an unset variable)', 'main', ['--workdir='],
     "--workdir is required and must not be empty (got ''): name the run's folder..."),
    ('whitespace --workdir', 'eval', ['--workdir= '],
     "--workdir is required and must not be empty (got ' ')"),
    ('config variant that does not exist', 'main',
     ['--workdir={new}', '--config=configs/fashion_mnist_simplenet.py:nope'],
     "cannot load --config: ValueError: unknown config variant 'nope'; use a comma-separated list "
     "of: baseline "
     '...(.../configs/default.py, line ...)'),
    ('a batch larger than the training split', 'main',
     ['--workdir={new}', '--config.batch_size=128'],
     'num_epochs=... of 0 steps (96 training examples / batch_size 128) trains 0 steps; use a '
     'batch_size of at most 96, more epochs, or num_train_steps'),
    ('negative grad_clip_norm', 'main', ['--workdir={new}', '--config.grad_clip_norm=-1'],
     'grad_clip_norm must be 0 (off) or a positive finite number, got -1.0'),
    ('eval when the dataset cannot be downloaded', 'eval',
     ['--workdir={done}', '--config.dataset.data_dir={empty}'],
     'cannot download http://127.0.0.1:9/...'),
    ('eval when WORKDIR/eval is a file', 'eval', ['--workdir={eval_file}'],
     '.../eval is a file, where isx.eval writes its metrics.json and embeddings.npz: move it '
     'away and run again'),
    ('sweep grid that is not JSON', 'sweep', ['--grid={bad_py}', '--out={new}'],
     '--grid ...bad.py is not JSON (...); see results/grids/ for examples'),
    ('sweep grid with a mistyped key', 'sweep', ['--grid={typo_grid}', '--out={new}'],
     "grid override modell.xi=1: 'modell'..."),
    ('sweep grid file missing', 'sweep', ['--grid={new}.json', '--out={new}'],
     '--grid ...new.json not found; see results/grids/ for grids'),
    ('sweep without --out', 'sweep', ['--grid={grid}'],
     '--config, --grid and --out are required: python -m isx.sweep ...'),
    ('tune space with a key the config lacks', 'tune',
     ['--space={typo_space}', '--out={new}'],
     "--space method a at modell.xi=1.0: grid override modell.xi=1.0: 'modell'..."),
    ('tune space with an empty range', 'tune', ['--space={empty_space}', '--out={new}'],
     'a: learning_rate: the range [0.1, 0.1] is empty; give low < high'),
    ('tune budget of 0 trials', 'tune', ['--space={space}', '--out={new}', '--trials=0'],
     'the budget must be a positive number of trials per method, got 0'),
    ('tune storage that cannot be opened', 'tune',
     ['--space={space}', '--out={new}', '--storage=sqlite:///{new}/studies.db'],
     '--storage sqlite:///...new/studies.db cannot be opened (OperationalError: ...); give a '
     'reachable Optuna storage URL, e.g. sqlite:///OUT/studies.db'),
    ('a tuned batch size the devices do not divide', 'tune',
     ['--space={batch_space}', '--out={new}', '--cpu_devices=4'],
     'batch_size=18 is not divisible by the 4 devices (1 processes); use a multiple of 4'),
    ('sweep shard beyond the count', 'sweep', ['--grid={grid}', '--out={new}', '--shard=3/2'],
     '--shard=3/2 must be i/n with 0 <= i < n, e.g. --shard=0/2 and --shard=1/2 for two '
     'processes'),
    ('one training class', 'main', ['--workdir={new}', '--config.dataset.classes=3'],
     "dataset.classes '3' trains on 1 class of the 10: with one class the loss and its gradient "
     "are 0 at every step, so nothing would train; name at least 2 classes"),
    ('a validation fraction that leaves nothing to train on', 'main',
     ['--workdir={new}', '--config.dataset.validation_fraction=0.9999999'],
     'dataset.validation_fraction=0.9999999 of the 96 training examples leaves 0 to train on and '
     '96 to validate on; choose a fraction that leaves both'),
    ('every loss term at weight 0', 'main', ['--workdir={new}', '--config.loss.softmax.weight=0'],
     "every term of loss 'softmax' has weight 0, so nothing would train (the loss and its "
     "gradient are 0 at every step); give a term a positive weight"),
    ('tune range that reaches a value the config refuses', 'tune',
     ['--space={xi_space}', '--out={new}'],
     '--space method a at model.xi=-10: xi must be a positive finite number, got -10.0...'),
    ('tune float range on an integer setting', 'tune', ['--space={int_space}', '--out={new}'],
     '--space method a: batch_size is an integer setting; give its range "int": true (and '
     'integer ends) or "choices"'),
    ('tune objective that no trial reports', 'tune', ['--space={objective_space}', '--out={new}'],
     '"objective" \'MAP@R\' is not a metric that method a\'s trials report; they report accuracy, '
     '...map@r...'),
    ('tune space whose trials would score the test split', 'tune',
     ['--space={test_space}', '--out={new}'],
     "--space method a: its trials score the 'test' split, so selection would read the test "
     "split; set \"dataset.eval_split\": \"validation\"..."),
    ('tune final_overrides with a mistyped key', 'tune', ['--space={final_space}', '--out={new}'],
     '--space method a, "final_overrides": grid override num_epoch=3: the config has no field '
     "'num_epoch'; did you mean 'num_epochs'?"),
    ('tune method that is not an object', 'tune', ['--space={method_space}', '--out={new}'],
     '--space ...method_space.json: method a must be an object {"overrides": {key: value}, '
     '"params": {key: range}}, got 3'),
    ('tune method name that would leave --out', 'tune', ['--space={escape_space}', '--out={new}'],
     "method name '../x' cannot name a folder inside --out: use letters, digits and _.+=,@-..."),
    ('tune negative --seed', 'tune', ['--space={space}', '--out={new}', '--seed=-1'],
     '--seed must be an integer in [0, 2**32), got -1'),
    ('tune --heartbeat 0', 'tune', ['--space={space}', '--out={new}', '--heartbeat=0'],
     '--heartbeat must be a whole number of seconds >= 1, got 0'),
    ('tune --out that is a file', 'tune', ['--space={space}', '--out={bad_py}'],
     '--out ...bad.py is a file; name a folder for the study'),
    ('sweep grid naming a run twice', 'sweep', ['--grid={dup_grid}', '--out={new}'],
     '--grid ...dup_grid.json names a more than once; each entry needs a name of its own...'),
    ('sweep grid name that would leave --out', 'sweep', ['--grid={escape_grid}', '--out={new}'],
     "entry name '../escaped' cannot name a folder inside --out..."),
    ('sweep overrides given as a list', 'sweep', ['--grid={list_grid}', '--out={new}'],
     'entry a: "overrides" must be an object {key: value} and "seeds" a list of distinct '
     'integers >= 0'),
    ('scoring embeddings with a mistyped --runs', 'results/score_embeddings.py',
     ['--runs={new}', '--out={done}/metrics.jsonl'],
     '--runs ...new is not a folder; give the --out of the sweep whose runs to score'),
    ('scoring a truncated embeddings.npz', 'results/score_embeddings.py',
     ['--runs={truncated_runs}', '--out={new}.jsonl'],
     '...a_0/eval/embeddings.npz cannot be read (...); score it again with python -m isx.eval '
     '--workdir=...a_0'),
    ('time to accuracy with a run that fails', 'benchmarks/time_to_accuracy.py',
     ['--config=configs/fashion_mnist_fast.py', '--data_dir={data}', '--arms=is', '--seeds=0',
      '--out={new}', '--record={new}.jsonl', '--set=model.xi=0'],
     'fashion_mnist_fast seed 0: isx.main exited with 1 (error: xi must be a positive finite '
     'number, got 0.0...); nothing was recorded...'),
]


def pattern(line: str) -> str:
  """The regex an error line must match: the text literally, `...` for anything."""
  return '.*'.join(re.escape(part) for part in line.split('...'))


def markdown() -> str:
  rows = ['| bad input | command | the one line on stderr (exit 1) |', '|---|---|---|']
  for case, binary, args, line in CASES:
    names = {'{done}': 'FINISHED', '{new}': 'NEW', '{empty}': 'EMPTY_DIR', '{bad_py}': 'BAD.py',
             '{grid}': 'GRID.json', '{typo_grid}': 'TYPO_GRID.json', '{eval_file}': 'FINISHED',
             '{bad_json}': 'FINISHED', '{space}': 'SPACE.json', '{typo_space}': 'TYPO_SPACE.json',
             '{empty_space}': 'EMPTY_RANGE.json', '{batch_space}': 'BATCH_18_SPACE.json',
             '{truncated_runs}': 'RUNS', '{data}': 'DATA'}
    names.update({f'{{{n}}}': f'{n.upper()}.json' for n in re.findall(r'{(\w+_(?:space|grid))}',
                                                                       ' '.join(args))
                  if f'{{{n}}}' not in names})
    shown = [re.sub('|'.join(map(re.escape, names)), lambda m: names[m.group()], a) for a in args]
    command = (f'python {binary} ' if binary.endswith('.py') else f'isx.{binary} ') + ' '.join(shown)
    rows.append(f'| {case} | `{command}` | `error: {line}` |')
  return '\n'.join(rows)


if __name__ == '__main__':
  print(markdown())
