"""The README's layout map and the docs' lists of plug-ins match the tree: a module or a plug-in
added without a word in them fails here."""
import os
import re

import pytest

from isx import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGINS = {'models': 'Model', 'heads': 'Head', 'losses': 'Loss', 'evals': 'compute'}


def _layout():
  readme = open(os.path.join(ROOT, 'README.md')).read()
  block = readme.split('## Layout\n', 1)[1].split('\n## ', 1)[0]
  entries = []
  for line in (line[4:] for line in block.splitlines() if line.startswith('    ')):
    if line.startswith(' ') and entries:  # the entry above goes on
      entries[-1] += ' ' + line.strip()
    else:
      entries.append(line)
  return entries


def _listed(line):
  """The names before the line's first ';', '(' or ':' after its path: 'a, b, c (x)' -> [a, b, c]."""
  names = re.split(r'[;(:]', line.split(None, 1)[1])[0]
  return sorted(n.strip() for n in names.split(',') if n.strip())


@pytest.mark.parametrize('kind', sorted(PLUGINS))
def test_the_layout_lists_every_plugin_of_each_kind(kind):
  line = next(line for line in _layout() if line.startswith(f'isx/{kind}/'))
  assert _listed(line) == registry.available(kind, PLUGINS[kind]), line


def test_the_layout_names_every_module():
  text = '\n'.join(_layout())
  named = set(re.findall(r'(\w+)\.py', text))
  datasets = set(registry.available('datasets', 'prepare'))  # "one plug-in per dataset"
  missing = []
  for folder in ('isx', 'isx/datasets'):
    for name in sorted(os.listdir(os.path.join(ROOT, folder))):
      module = name[:-3]
      if (name.endswith('.py') and module != '__init__' and module not in named
          and not (folder == 'isx/datasets' and module in datasets)):
        missing.append(f'{folder}/{name}')
  assert not missing, f'README.md\'s layout does not name {missing}'


def test_the_config_reference_lists_every_model_and_head():
  page = open(os.path.join(ROOT, 'docs', 'configs.md')).read()
  for kind, key in (('models', 'model.name'), ('heads', 'model.head.name')):
    row = next(line for line in page.splitlines() if line.startswith(f'| `{key}` |'))
    listed = re.findall(r'`(\w+)`', row.split('|')[3].split('(')[0])
    assert sorted(listed) == registry.available(kind, PLUGINS[kind]), row
