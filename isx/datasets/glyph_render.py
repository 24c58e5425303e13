"""Renders one character of one font as a small grayscale image: drawn large, cropped to its ink's
bounding box, scaled to fit the image (aspect kept) and centred. A seeded jitter varies
rotation, scale, shift, stroke and blur, so that every rendering of a class is distinct.
"""
import dataclasses
import functools
import hashlib

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

EM = 64  # pixels per em when drawing; the ink is then scaled down to the image
MARGIN = 2  # pixels left around the scaled ink


@dataclasses.dataclass(frozen=True)
class Jitter:
  rotation: float = 0.0  # degrees, counter-clockwise
  scale: float = 1.0  # of the largest size that fits
  shift: tuple = (0, 0)  # pixels (x, y) from the centre
  stroke: int = 0  # pixels at EM: > 0 thickens, < 0 thins
  blur: float = 0.0  # Gaussian radius in image pixels


def jitter(key: str, seed: int) -> Jitter:
  """The jitter of the image named key (font file, character, copy), from a hash of
  (seed, key): the same build gives the same images on any machine."""
  digest = hashlib.sha256(f'{seed}:{key}'.encode()).digest()
  rng = np.random.default_rng(np.frombuffer(digest[:16], np.uint64))
  return Jitter(rotation=float(rng.uniform(-10, 10)), scale=float(rng.uniform(0.8, 1.0)),
                shift=tuple(int(s) for s in rng.integers(-2, 3, size=2)),
                stroke=int(rng.integers(-1, 3)), blur=float(rng.choice([0.0, 0.0, 0.4, 0.7])))


@functools.lru_cache(maxsize=8)
def _font(path: str) -> ImageFont.FreeTypeFont:
  return ImageFont.truetype(path, EM)


def render(path: str, char: str, size: int, jig: Jitter = Jitter()) -> np.ndarray | None:
  """The character as [size, size] uint8 (ink 255 on 0, its darkest pixel 255), or None if the
  font draws no ink."""
  canvas = Image.new('L', (4 * EM, 4 * EM), 0)
  ImageDraw.Draw(canvas).text((1.5 * EM, 2.5 * EM), char, font=_font(path), fill=255, anchor='ls',
                              stroke_width=max(jig.stroke, 0), stroke_fill=255)
  if jig.stroke < 0:
    canvas = canvas.filter(ImageFilter.MinFilter(1 - 2 * jig.stroke))
  if jig.rotation:
    canvas = canvas.rotate(jig.rotation, resample=Image.BILINEAR)
  box = canvas.getbbox()
  if box is None:  # no ink, or a hairline thinned away: then it keeps its strokes
    return render(path, char, size, dataclasses.replace(jig, stroke=0)) if jig.stroke < 0 else None
  ink = canvas.crop(box)
  fit = (size - 2 * MARGIN) * jig.scale / max(ink.size)
  ink = ink.resize((max(1, round(ink.width * fit)), max(1, round(ink.height * fit))),
                   Image.LANCZOS)
  image = Image.new('L', (size, size), 0)
  image.paste(ink, ((size - ink.width) // 2 + jig.shift[0], (size - ink.height) // 2 + jig.shift[1]))
  if jig.blur:
    image = image.filter(ImageFilter.GaussianBlur(jig.blur))
  pixels = np.asarray(image, np.float32)
  # full contrast: a hairline font scaled down would otherwise be a faint grey
  return np.round(pixels * (255 / max(pixels.max(), 1))).astype(np.uint8)
