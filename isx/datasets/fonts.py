"""Fonts for the glyphs dataset: Debian's font packages (a pinned list, installed by apt-get when
run as root) or any folder of .ttf/.otf files, read with fontTools. Each font is recorded with
its file, family, style, package, package version and license, so a build says what it is made of.
"""
import dataclasses
import hashlib
import os
import pathlib
import shutil
import subprocess

from fontTools import ttLib

from isx import errors

# Latin, Greek and Cyrillic families from Debian main, each with its license in
# /usr/share/doc/PACKAGE/copyright; 156 MB installed. fonts-noto-core (42 MB) is left out: most
# of it is other scripts, and its Latin families come in many weights of one design.
PACKAGES = (
    'fonts-anonymous-pro', 'fonts-cantarell', 'fonts-cmu', 'fonts-comfortaa',
    'fonts-crosextra-caladea', 'fonts-crosextra-carlito', 'fonts-dejavu-core', 'fonts-dejavu-extra',
    'fonts-ebgaramond', 'fonts-firacode', 'fonts-freefont-ttf', 'fonts-gfs-artemisia',
    'fonts-gfs-didot', 'fonts-gfs-neohellenic', 'fonts-go', 'fonts-hack', 'fonts-inter',
    'fonts-jetbrains-mono', 'fonts-lato', 'fonts-liberation2', 'fonts-linuxlibertine',
    'fonts-mononoki', 'fonts-noto-mono', 'fonts-oldstandard', 'fonts-open-sans', 'fonts-paratype',
    'fonts-roboto-unhinted', 'fonts-sil-andika', 'fonts-sil-charis', 'fonts-sil-doulos',
    'fonts-sil-gentiumplus', 'fonts-stix', 'fonts-texgyre', 'fonts-tuffy', 'fonts-urw-base35')
_SUFFIXES = ('.ttf', '.otf')


@dataclasses.dataclass(frozen=True)
class Font:
  path: str
  family: str
  style: str
  package: str
  version: str
  license: str
  codepoints: frozenset = dataclasses.field(repr=False, compare=False)

  def record(self) -> dict:
    """What a build records of the font (the file by name, no machine path)."""
    return {'file': os.path.basename(self.path), 'family': self.family, 'style': self.style,
            'package': self.package, 'version': self.version, 'license': self.license}


def _dpkg(*args) -> str:
  return subprocess.run(['dpkg-query', *args], capture_output=True, text=True).stdout


def missing_packages(packages) -> list[str]:
  installed = _dpkg('-W', '-f=${Package} ${db:Status-Status}\n', *packages)
  ok = {line.split()[0] for line in installed.splitlines() if line.endswith(' installed')}
  return [p for p in packages if p not in ok]


def install(packages=PACKAGES):
  """Installs the packages not yet installed with apt-get when running as root; otherwise one
  line naming them, or --font_dir."""
  missing = missing_packages(packages) if shutil.which('dpkg-query') else list(packages)
  if not missing:
    return
  how = ('install them (apt-get install ' + ' '.join(missing) + ') or give a folder of .ttf/.otf '
         'fonts with --font_dir=DIR (config.dataset.font_dir)')
  if not shutil.which('apt-get') or os.geteuid() != 0:
    raise errors.NotFound(f'the glyphs dataset needs {len(missing)} Debian font packages: {how}')
  print(f'Installing {len(missing)} Debian font packages with apt-get ...', flush=True)
  env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
  done = subprocess.run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', *missing],
                        capture_output=True, text=True, env=env)
  if done.returncode:
    last = (done.stderr.strip().splitlines() or ['(no output)'])[-1]
    raise errors.NotFound(f'apt-get could not install the font packages ({last}): {how}')


def _license(package: str) -> str:
  """The DEP-5 License fields of the package's copyright file, in order, once each."""
  path = pathlib.Path('/usr/share/doc', package, 'copyright')
  names = []
  if path.is_file():
    for line in path.read_text(errors='replace').splitlines():
      if line.startswith('License:') and line[8:].strip() not in names:
        names.append(line[8:].strip())
  return ' / '.join(names) or 'see /usr/share/doc/' + package + '/copyright'


def read(path, package='', version='', license_='') -> Font | None:
  """The font at path, or None if fontTools cannot read it (the caller counts it)."""
  try:
    with ttLib.TTFont(path, lazy=True, fontNumber=0) as font:
      names = font['name']
      family = names.getDebugName(16) or names.getDebugName(1) or pathlib.Path(path).stem
      style = names.getDebugName(17) or names.getDebugName(2) or ''
      if not license_:  # a font folder: the font's own license name (ID 13), its first line
        license_ = (names.getDebugName(13) or '').strip().split('\n')[0][:200]
      # Unicode subtables only: a symbol-encoded one maps letters' codes to other shapes
      codepoints = frozenset(c for t in font['cmap'].tables if t.isUnicode() for c in t.cmap)
  except Exception:  # noqa: BLE001  fontTools raises many kinds on a damaged file
    return None
  return Font(str(path), family, style, package, version, license_, codepoints)


def from_packages(packages=PACKAGES) -> tuple[list[Font], int]:
  """The fonts of the installed packages, and how many files could not be read."""
  fonts, unreadable = [], 0
  for package in packages:
    version = _dpkg('-W', '-f=${Version}', package).strip()
    files = sorted(f for f in _dpkg('-L', package).splitlines()
                   if f.lower().endswith(_SUFFIXES) and os.path.isfile(f))
    for file in files:
      font = read(file, package, version, _license(package))
      if font:
        fonts.append(font)
      unreadable += font is None
  return fonts, unreadable


def from_dir(font_dir) -> tuple[list[Font], int]:
  """The .ttf/.otf fonts under font_dir (searched recursively), and how many could not be read."""
  root = pathlib.Path(font_dir)
  if not root.exists():
    raise errors.NotFound(f'--font_dir {font_dir} does not exist: give a folder of .ttf/.otf fonts')
  if not root.is_dir():
    raise errors.NotAFolder(f'--font_dir {font_dir} is a file: give the folder that holds the '
                            'fonts')
  files = sorted(p for p in root.rglob('*') if p.suffix.lower() in _SUFFIXES and p.is_file())
  fonts = [read(f) for f in files]
  return [f for f in fonts if f], sum(f is None for f in fonts)


def _hash(text: str) -> bytes:
  return hashlib.sha256(text.encode()).digest()


def select_faces(fonts: list[Font], per_family: int) -> list[Font]:
  """At most per_family faces of each family, spread evenly over its styles in name order, one
  font per (family, style): a font shipped twice (liberation and liberation2) counts once."""
  families: dict[str, dict[str, Font]] = {}
  for font in fonts:
    families.setdefault(font.family, {}).setdefault(font.style, font)
  chosen = []
  for family in sorted(families):
    faces = [families[family][s] for s in sorted(families[family])]
    step = max(1, len(faces) / per_family)
    chosen += [faces[int(i * step)] for i in range(min(per_family, len(faces)))]
  return chosen


def test_families(families, fraction: float, seed: int) -> set[str]:
  """The families whose fonts form the test split: the `fraction` of them first by a hash of
  (seed, name), so the split depends on no listing order and no RNG implementation."""
  ranked = sorted(set(families), key=lambda f: _hash(f'{seed}:{f}'))
  return set(ranked[:max(1, round(fraction * len(ranked)))])
