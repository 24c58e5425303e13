"""The glyphs dataset's classes: character sets, and the rule that merges shapes which cannot be
told apart once each image is scaled from its glyph's bounding box.

Merged (one class; its name lists its characters, and each font draws it with the first of them
that it has, so that an italic lowercase of another shape never enters the class):
- one letterform in several scripts (Unicode's confusables within Latin, Greek and Cyrillic):
  Latin A, Greek Alpha and Cyrillic A; 3 and Cyrillic Ze; ...
- a lowercase letter drawn as a small copy of its capital (c/C, o/O, s/S, v/V, w/W, x/X, z/Z, most
  of upright Cyrillic): scaled to the same box, only the stroke weight tells them apart;
- l and I (one vertical stroke in sans fonts).
Left out: '|' (a stroke, as l), '^' (as Greek Lambda), the degree sign (as o), the
multiplication sign (as x), and the dot and line marks (. , : ; - _ ' `), which scale to blobs.
`tests/test_glyphs.py` checks the rule on the rendered fonts: no two classes are near-identical
images in a quarter of the fonts that draw both.
"""
import hashlib

from isx import errors

_GREEK_UPPER = ''.join(chr(c) for c in range(0x391, 0x3AA) if c != 0x3A2)
_CYRILLIC = ''.join(chr(c) for c in range(0x410, 0x450)) + 'Ёё'
CHARSETS = {
    'digits': '0123456789',
    'latin': 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
    'greek': _GREEK_UPPER + _GREEK_UPPER.lower() + 'ς',
    'cyrillic': _CYRILLIC,
    'latin_extra': 'ßæœøþðłŋħđÆŒØÞÐŁŊĦ',
    'symbols': '!"#$%&()*+/<=>?@[\\]{}~§¶€£¥¢©®±÷¤µ',
}
DEFAULT = '+'.join(CHARSETS)

# Each group is one class. The first character of a group names the class's script.
MERGED = (
    'AΑА', 'BΒВв', 'CcСс', 'EΕЕ', 'HΗНн', 'IΙl', 'KΚКкκ', 'MΜМм', 'NΝ', 'OoΟοОо', 'PΡР', 'TΤТт',
    'XxΧХх', 'YΥ', 'ZzΖ', 'aа', 'eе', 'pрρ', 'yу', 'ΓГг', 'ΠПп', 'ΦФ', 'μµ', '3Зз', 'bЬь',
    'sS', 'vVν', 'wW', 'øØ', 'ηŋ', 'Жж', 'Ии', 'Йй', 'Лл', 'Цц', 'Чч', 'Шш', 'Щщ', 'Ъъ',
    'Ыы', 'Ээ', 'Юю', 'Яя')


def classes(charsets: str = DEFAULT) -> list[str]:
  """The class names (each the characters of one class) of the '+'-joined character sets, in a
  fixed order by a hash of the name, so that dataset.classes='first_half' mixes the scripts."""
  names = [n for n in charsets.split('+') if n]
  unknown = [n for n in names if n not in CHARSETS]
  if unknown or not names:
    raise errors.ConfigError(f'unknown character set(s) {unknown or charsets!r} in charsets; '
                             f"choose '+'-joined names from {sorted(CHARSETS)}")
  wanted = ''.join(dict.fromkeys(''.join(CHARSETS[n] for n in names)))
  group_of = {c: g for g in MERGED for c in g}
  groups = dict.fromkeys(''.join(c for c in group_of.get(ch, ch) if c in wanted) for ch in wanted)
  return sorted(groups, key=lambda g: hashlib.sha256(g.encode()).digest())
