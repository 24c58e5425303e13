"""CosFace (Wang et al. 2018): s * (cos(theta_y) - m) for the target class."""
import functools

from isx.heads._cosine import CosineHead


def cosface_target(cos, margin: float):
  return cos - margin


def Head(num_classes: int, scale: float = 30.0, margin: float = 0.35):  # noqa: N802
  return CosineHead(num_classes, scale=scale,
                    target=functools.partial(cosface_target, margin=margin))


def check(scale, margin):
  if not scale > 0:
    raise ValueError(f'scale must be > 0, got {scale!r}')
  # The target's cosine must be able to beat a class at 90 degrees: 1 - m > 0.
  if not 0 <= margin < 1:
    raise ValueError(f'margin must be in [0, 1) (at m >= 1 an aligned feature scores no more '
                     f'than an orthogonal class), got {margin!r}')
