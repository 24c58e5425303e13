"""Glyphs: characters rendered from free fonts (Latin, Greek, Cyrillic, digits, symbols; 155
classes by default), a many-class dataset built offline. The test split's fonts come from font
families the train split never saw, so accuracy measures new styles, not memorised ones.

  python -m isx.prepare_data --dataset=glyphs --data_dir=OUT            # Debian: installs the fonts
  python -m isx.prepare_data --dataset=glyphs --font_dir=FONTS --data_dir=OUT   # any folder of fonts

Each image is one character of one font, drawn large, cropped to its ink, scaled to fit 28x28
(aspect kept), centred, then jittered (rotation, scale, shift, stroke, blur) by a hash of its
name. Classes with fewer than images_per_class training fonts get more jittered copies. The
merge rule for look-alike shapes is in isx/datasets/glyph_classes.py. Next to the dataset,
build.json records every font (file, family, style, package, version, license, split), what
could not be drawn, and a content hash of the build: the same fonts give the same hash.
"""
import hashlib
import json
import math
import multiprocessing
import os
import re

import numpy as np
import tqdm

from isx import errors
from isx.datasets import fonts as fonts_lib
from isx.datasets import glyph_classes, glyph_render, store

NAME, VERSION = 'glyphs', '1.0.0'
HOW_TO_PREPARE = ('python -m isx.prepare_data --dataset=glyphs --data_dir={root} (as root on '
                  'Debian it installs the fonts), or add --font_dir=DIR, a folder of .ttf/.otf fonts')
IMAGE_SIZE = 28
BUILD_FILE = 'build.json'


MIN_AGREEMENT = 0.2  # a rendering less correlated than this with its class's mean is left out
MIN_FONT_AGREEMENT = 0.4  # a font whose median rendering is below this is left out whole
_NOT_ORDINARY = re.compile(r'small ?caps|smcp|keyboard|dingbat', re.IGNORECASE)


def _member(font, name: str) -> str | None:
  """The character that draws class `name` in `font`: the first of the class's characters that
  the font has (a merged class is drawn as its first letter: Cyrillic italic t is drawn as m,
  so a class merging T with it cannot take the font's own lowercase), or None."""
  return next((c for c in name if ord(c) in font.codepoints), None)


def _clean(task):
  """{label: (char, unjittered image)} of one font, and the labels it drew no ink for."""
  font, class_names = task
  drawn, no_ink = {}, []
  for label, name in enumerate(class_names):
    char = _member(font, name)
    if char is not None:
      image = glyph_render.render(font.path, char, IMAGE_SIZE)
      if image is None:
        no_ink.append(label)
      else:
        drawn[label] = (char, image)
  return drawn, no_ink


def _jittered(task):
  """[(key, image, label)] of one font: `copies` jittered images of each (label, char)."""
  font, pairs, seed = task
  out = []
  for label, char, copies in pairs:
    for copy in range(copies):
      key = f'{font.family}|{font.style}|U+{ord(char):04X}|{copy}'
      out.append((key, glyph_render.render(font.path, char, IMAGE_SIZE,
                                           glyph_render.jitter(key, seed)), label))
  return out


def agreement(drawn: list[dict], num_classes: int) -> list[dict]:
  """{label: correlation of the font's image with the mean image of its class over all fonts}
  for each font's {label: (char, image)}: low for a font that maps letters to other shapes (a
  symbol, keyboard or dingbat font)."""
  flat = lambda image: image.astype(np.float32).ravel()
  sums, counts = {}, np.zeros(num_classes)
  for font in drawn:
    for label, (_, image) in font.items():
      sums[label] = sums.get(label, 0) + flat(image)
      counts[label] += 1
  corr = lambda a, b: float(np.corrcoef(a, b)[0, 1]) if a.std() and b.std() else 0.0
  return [{label: corr(flat(image), sums[label] / counts[label])
           for label, (_, image) in font.items()} for font in drawn]


def lookalikes(drawn: list[dict], class_names, tolerance=0.01, share=0.25) -> list[list[str]]:
  """Pairs of classes whose images are near-identical (mean |difference| under `tolerance`, in
  [0, 1] pixels) in at least `share` of the fonts that draw both: shapes the merge rule should
  have merged (glyph_classes.MERGED). Unmerged, Latin A and Cyrillic A are near-identical in about
  90% of the fonts; merged, no pair reaches 5% on Debian's fonts."""
  num = len(class_names)
  near, both = np.zeros((num, num), np.int32), np.zeros((num, num), np.int32)
  for font in filter(None, drawn):
    labels = np.array(sorted(font))
    pixels = np.stack([font[lab][1] for lab in labels]).reshape(len(labels), -1).astype(np.int16)
    mean_diff = np.abs(pixels[:, None] - pixels[None]).mean(-1) / 255.0
    near[np.ix_(labels, labels)] += mean_diff < tolerance
    both[np.ix_(labels, labels)] += 1
  return [[class_names[a], class_names[b]] for a, b in zip(*np.triu_indices(num, 1))
          if both[a, b] and near[a, b] >= share * both[a, b]]


def _counts(fonts, test, drawn, class_names):
  """{class: [train fonts, test fonts]} drawing it."""
  counts = {name: [0, 0] for name in class_names}
  for font, labels in zip(fonts, drawn):
    for label in labels:
      counts[class_names[label]][font.family in test] += 1
  return counts


def _check_coverage(counts, min_fonts: int):
  few = {n: sum(c) for n, c in counts.items() if sum(c) < min_fonts}
  if few:
    shown = ', '.join(f'{n!r} ({k})' for n, k in list(few.items())[:12])
    raise errors.ConfigError(
        f'{len(few)} classes are drawn by fewer than min_fonts_per_class={min_fonts} fonts: '
        f'{shown}{" ..." if len(few) > 12 else ""}; add fonts (font_dir) or leave their character '
        'sets out (charsets)')
  one_sided = [n for n, (train, test) in counts.items() if not train or not test]
  if one_sided:
    raise errors.ConfigError(f'classes with no train or no test font: {one_sided[:12]}; add font '
                             'families or change test_fraction')


def build_hash(class_names, splits) -> str:
  """SHA-256 of the class names and every example (key, label, pixels) of every split."""
  digest = hashlib.sha256(json.dumps(class_names, ensure_ascii=False).encode())
  for split in sorted(splits):
    for key, image, label in sorted(splits[split], key=lambda e: e[0]):
      digest.update(f'{split}|{key}|{label}|'.encode())
      digest.update(np.ascontiguousarray(image).tobytes())
  return digest.hexdigest()


def _fonts(font_dir, faces_per_family):
  """The faces to render, the faces left out by name (with why), and the unreadable files."""
  if font_dir:
    found, unreadable = fonts_lib.from_dir(font_dir)
  else:
    fonts_lib.install()
    found, unreadable = fonts_lib.from_packages()
  if not found:
    raise errors.NotFound(f'no readable .ttf/.otf fonts in {font_dir or "the font packages"}: '
                          'give a folder of fonts with font_dir')
  faces = fonts_lib.select_faces(found, faces_per_family)
  named = [f for f in faces if _NOT_ORDINARY.search(f'{f.family} {f.style}')]
  left_out = [{**f.record(), 'why': 'its name says it draws other shapes'} for f in named]
  return [f for f in faces if f not in named], left_out, unreadable, len(found)


def _agreeing(faces, drawn, num_classes):
  """The faces and their {label: (char, image)} without the fonts and images that disagree with the
  others, the fonts left out (with why), and {font path: labels left out}."""
  scores = agreement(drawn, num_classes)
  fonts, kept, left_out, unlike = [], [], [], {}
  for face, images, score in zip(faces, drawn, scores):
    median = float(np.median(list(score.values()))) if score else 0.0
    if median < MIN_FONT_AGREEMENT:
      why = (f'unlike the other fonts (median agreement {median:.2f})' if score else
             'draws none of the characters')
      left_out.append({**face.record(), 'why': why})
      continue
    fonts.append(face)
    kept.append({lab: d for lab, d in images.items() if score[lab] >= MIN_AGREEMENT})
    unlike[face.path] = sorted(set(images) - set(kept[-1]))
  return fonts, kept, left_out, unlike


def prepare(data_dir, font_dir: str = '', charsets: str = glyph_classes.DEFAULT,
            faces_per_family: int = 2, min_fonts_per_class: int = 20, images_per_class: int = 100,
            test_fraction: float = 0.2, build_seed: int = 0):
  """Writes DATA_DIR/glyphs/1.0.0 and its build.json."""
  class_names = glyph_classes.classes(charsets)
  if not 0 < test_fraction < 1:
    raise errors.ConfigError(f'test_fraction must be in (0, 1), got {test_fraction}')
  if faces_per_family < 1 or images_per_class < 1:
    raise errors.ConfigError('faces_per_family and images_per_class must be at least 1')
  faces, left_out, unreadable, found = _fonts(font_dir, faces_per_family)
  with multiprocessing.get_context('spawn').Pool(min(os.cpu_count() or 1, 8)) as pool:
    rendered = list(tqdm.tqdm(pool.imap(_clean, [(f, class_names) for f in faces]),
                              total=len(faces), desc='fonts', unit='font'))
    no_ink = {f.path: len(missing) for f, (_, missing) in zip(faces, rendered)}
    fonts, drawn, left_out_unlike, unlike = _agreeing(faces, [d for d, _ in rendered], len(class_names))
    test = fonts_lib.test_families([f.family for f in fonts], test_fraction, build_seed)
    counts = _counts(fonts, test, drawn, class_names)
    _check_coverage(counts, min_fonts_per_class)
    copies = [math.ceil(images_per_class / counts[n][0]) for n in class_names]
    tasks = [(f, [(lab, char, 1 if f.family in test else copies[lab])
                  for lab, (char, _) in sorted(d.items())], build_seed) for f, d in zip(fonts, drawn)]
    splits = {'train': [], 'test': []}
    for font, examples in zip(fonts, tqdm.tqdm(pool.imap(_jittered, tasks), total=len(tasks),
                                               desc='images', unit='font')):
      splits['test' if font.family in test else 'train'] += examples
  digest = build_hash(class_names, splits)
  path = store.write_dataset(
      NAME, VERSION, data_dir, splits, image_shape=(IMAGE_SIZE, IMAGE_SIZE, 1),
      label_names=class_names,
      description=f'Characters rendered from {len(fonts)} fonts; build {digest}.')
  record = {
      'hash': digest, 'classes': class_names,
      'settings': {'charsets': charsets, 'faces_per_family': faces_per_family,
                   'min_fonts_per_class': min_fonts_per_class,
                   'images_per_class': images_per_class, 'test_fraction': test_fraction,
                   'build_seed': build_seed, 'image_size': IMAGE_SIZE},
      'examples': {split: len(examples) for split, examples in splits.items()},
      'fonts_per_class': {n: {'train': c[0], 'test': c[1]} for n, c in counts.items()},
      'fonts': [{**f.record(), 'split': 'test' if f.family in test else 'train',
                 'classes': len(d), 'no_ink': no_ink[f.path],
                 'unlike': [class_names[lab] for lab in unlike[f.path]]}
                for f, d in zip(fonts, drawn)],
      'lookalikes': lookalikes(drawn, class_names),
      'left_out_fonts': left_out + left_out_unlike, 'unreadable_files': unreadable, 'fonts_found': found,
  }
  (path / BUILD_FILE).write_text(json.dumps(record, indent=1, ensure_ascii=False))
  return path
