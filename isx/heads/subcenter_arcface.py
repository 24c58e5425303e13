"""Sub-center ArcFace (Deng et al. 2020): K weight vectors per class, a class's cosine that of
its nearest one, then ArcFace's margin. Noisy or many-mode classes can spread over sub-centers
instead of pulling every example onto one."""
import functools

from isx.heads import arcface
from isx.heads._cosine import CosineHead


def Head(num_classes: int, scale: float = 30.0, margin: float = 0.5,  # noqa: N802
         subcenters: int = 3):
  return CosineHead(num_classes, scale=scale, subcenters=subcenters,
                    target=functools.partial(arcface.arcface_target, margin=margin))


def check(scale, margin, subcenters):
  arcface.check(scale, margin)
  if not (isinstance(subcenters, int) and subcenters >= 1):
    raise ValueError(f'subcenters must be a whole number >= 1 (1 is ArcFace), got {subcenters!r}')
