"""NormFace (Wang et al. 2017): scaled cosines, no margin."""
from isx.heads._cosine import CosineHead


def Head(num_classes: int, scale: float = 16.0):  # noqa: N802  the registry's name for it
  return CosineHead(num_classes, scale=scale)


def check(scale):
  if not scale > 0:
    raise ValueError(f'scale must be > 0, got {scale!r}')
