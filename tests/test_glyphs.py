"""The glyphs dataset, built from a small font subset (matplotlib's DejaVu and STIX fonts, which
every venv of isx has): split rules, records, the build hash, the look-alike rule, bad input."""
import hashlib
import json
import os
import pathlib
import runpy
import shutil

import matplotlib
import numpy as np
import pytest
import tensorflow_datasets as tfds

from isx import errors
from isx.datasets import fonts, glyph_classes, glyph_render, glyphs, store

MPL_FONTS = pathlib.Path(matplotlib.__file__).parent / 'mpl-data' / 'fonts' / 'ttf'
# 4 families x 4 faces, and Last Resort, which draws every character as one box
SUBSET = [f'DejaVu{family}{style}.ttf' for family in ('Sans', 'Serif', 'SansMono')
          for style in ('', '-Bold', '-Oblique' if family != 'Serif' else '-Italic',
                        '-BoldOblique' if family != 'Serif' else '-BoldItalic')]
SUBSET += ['STIXGeneral.ttf', 'STIXGeneralBol.ttf', 'STIXGeneralItalic.ttf', 'STIXGeneralBolIta.ttf',
           'LastResortHE-Regular.ttf']
SETTINGS = dict(charsets='digits+greek', faces_per_family=4, min_fonts_per_class=8,
                images_per_class=20, test_fraction=0.25)


@pytest.fixture(scope='module')
def font_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp('fonts')
  for name in SUBSET:
    shutil.copy(MPL_FONTS / name, folder / name)
  return folder


@pytest.fixture(scope='module')
def built(font_dir, tmp_path_factory):
  path = glyphs.prepare(tmp_path_factory.mktemp('data'), font_dir=str(font_dir), **SETTINGS)
  return path, json.loads((path / glyphs.BUILD_FILE).read_text())


def _examples(path, split):
  source = tfds.builder_from_directory(str(path)).as_data_source(split)
  return [source[i] for i in range(len(source))]


def test_test_fonts_come_from_families_training_never_saw(built):
  _, record = built
  split_of = {}
  for font in record['fonts']:
    assert split_of.setdefault(font['family'], font['split']) == font['split']
  assert set(split_of.values()) == {'train', 'test'}
  assert [f['family'] for f in record['left_out_fonts']] == ['Last Resort High-Efficiency']


def test_every_class_has_its_fonts_and_distinct_images(built):
  path, record = built
  classes = record['classes']
  assert len(classes) == len(glyph_classes.classes('digits+greek')) > 40
  for name, count in record['fonts_per_class'].items():
    assert count['train'] + count['test'] >= SETTINGS['min_fonts_per_class'], name
    assert count['test'] >= 1, name
  images = {}
  for example in _examples(path, 'train'):
    images.setdefault(int(example['label']), set()).add(hashlib.sha256(example['image']).digest())
  assert sorted(images) == list(range(len(classes)))
  # 12 training fonts per class, so the jitter makes 2 images of each
  assert min(len(v) for v in images.values()) >= SETTINGS['images_per_class']
  assert record['examples']['train'] == sum(len(v) for v in images.values())


def test_the_record_names_each_font_without_machine_paths(built):
  _, record = built
  for font in record['fonts']:
    assert set(font) >= {'file', 'family', 'style', 'package', 'version', 'license', 'split'}
    assert os.sep not in font['file'] and font['license']
  assert record['lookalikes'] == [] and record['unreadable_files'] == 0


def test_the_same_fonts_give_the_same_hash(built, font_dir, tmp_path):
  path, record = built
  again = glyphs.prepare(tmp_path, font_dir=str(font_dir), **SETTINGS)
  assert json.loads((again / glyphs.BUILD_FILE).read_text())['hash'] == record['hash']
  examples = [(str(i), e['image'], e['label']) for i, e in enumerate(_examples(path, 'test'))]
  changed = list(examples)
  changed[3] = (changed[3][0], changed[3][1].copy(), changed[3][2])
  changed[3][1][0, 0] ^= 1  # one pixel of one image
  assert (glyphs.build_hash(record['classes'], {'test': examples}) !=
          glyphs.build_hash(record['classes'], {'test': changed}))


def test_look_alike_shapes_are_merged(font_dir, monkeypatch):
  drawn_fonts = [fonts.read(font_dir / n) for n in ('DejaVuSans.ttf', 'DejaVuSerif.ttf',
                                                    'DejaVuSansMono.ttf', 'STIXGeneral.ttf')]
  def lookalikes():
    names = glyph_classes.classes()
    return glyphs.lookalikes([glyphs._clean((f, names))[0] for f in drawn_fonts], names)
  assert lookalikes() == []
  monkeypatch.setattr(glyph_classes, 'MERGED', ())  # the check fails without the merge rule
  found = lookalikes()
  assert ['A', 'Α'] in found or ['Α', 'A'] in found
  assert len(found) > 20


def test_jitter_is_seeded_and_varies():
  path = str(MPL_FONTS / 'DejaVuSans.ttf')
  image = lambda key, seed: glyph_render.render(path, 'Ж', 28, glyph_render.jitter(key, seed))
  assert np.array_equal(image('a', 0), image('a', 0))
  assert not np.array_equal(image('a', 0), image('b', 0))
  assert not np.array_equal(image('a', 0), image('a', 1))
  clean = glyph_render.render(path, 'Ж', 28)
  assert clean.shape == (28, 28) and clean.max() == 255 and clean[0].max() == 0  # margin kept


def test_classes_mix_the_scripts_in_each_half():
  names = glyph_classes.classes()
  assert len(names) >= 150 and len(set(names)) == len(names)
  first = ''.join(names[:len(names) // 2])
  for charset in ('digits', 'latin', 'greek', 'cyrillic'):
    assert any(c in first for c in glyph_classes.CHARSETS[charset]), charset


@pytest.mark.parametrize('settings,error,text', [
    (dict(charsets='latin+klingon'), errors.ConfigError, "unknown character set(s) ['klingon']"),
    (dict(min_fonts_per_class=40), errors.ConfigError,
     'classes are drawn by fewer than min_fonts_per_class=40 fonts'),
    (dict(test_fraction=1.0), errors.ConfigError, 'test_fraction must be in (0, 1)'),
])
def test_bad_settings_get_one_line(settings, error, text, font_dir, tmp_path):
  with pytest.raises(error, match=None) as raised:
    glyphs.prepare(tmp_path, font_dir=str(font_dir), **{**SETTINGS, **settings})
  assert text in str(raised.value) and '\n' not in str(raised.value)
  assert store.dataset_dir('glyphs', tmp_path) is None


def test_a_font_dir_that_is_a_file_empty_or_missing(tmp_path):
  (tmp_path / 'a.ttf').write_bytes(b'not a font')
  with pytest.raises(errors.NotAFolder, match='is a file: give the folder'):
    glyphs.prepare(tmp_path, font_dir=str(tmp_path / 'a.ttf'))
  with pytest.raises(errors.NotFound, match='no readable .ttf/.otf fonts in'):
    glyphs.prepare(tmp_path, font_dir=str(tmp_path))  # its one file is not a font
  with pytest.raises(errors.NotFound, match='does not exist'):
    glyphs.prepare(tmp_path, font_dir=str(tmp_path / 'nope'))


def test_without_root_it_names_the_packages(monkeypatch):
  monkeypatch.setattr(fonts, 'missing_packages', lambda packages: ['fonts-cmu', 'fonts-lato'])
  monkeypatch.setattr(fonts.shutil, 'which', lambda name: '/usr/bin/' + name)
  monkeypatch.setattr(fonts.os, 'geteuid', lambda: 1000)
  with pytest.raises(errors.NotFound, match=r'needs 2 Debian font packages: install them '
                     r'\(apt-get install fonts-cmu fonts-lato\) or give a folder'):
    fonts.install()


def test_the_results_scripts_read_the_built_dataset(built, tmp_path, monkeypatch, capsys):
  path, _ = built
  root = pathlib.Path(__file__).parents[1] / 'results'
  data_dir = str(path.parent.parent)
  monkeypatch.setattr('sys.argv', ['x', f'--data_dir={data_dir}'])
  runpy.run_path(str(root / 'glyph_pixel_baseline.py'), run_name='__main__')
  lines = capsys.readouterr().out.splitlines()
  assert [line.split(' {')[0] for line in lines] == ['all classes', 'unseen half']
  assert 0 < json.loads(lines[1].split(' ', 2)[2])['recall@1'] <= 100
  monkeypatch.setattr('sys.argv', ['x', f'--data_dir={data_dir}', f'--out={tmp_path / "s.png"}'])
  runpy.run_path(str(root / 'glyph_samples.py'), run_name='__main__')
  assert (tmp_path / 's.png').stat().st_size > 1000
