"""ArcFace (Deng et al. 2019): s * cos(theta_y + m) for the target class."""
import functools
import math

import jax.numpy as jnp

from isx.heads._cosine import CosineHead


def arcface_target(cos, margin: float):
  """cos(theta + m) while theta + m <= pi; past that, cos(theta) - m sin(m), as ArcFace's
  reference code does.

  cos(theta + m) alone rises again for theta > pi - m, so a sample could lower its loss by moving
  away from its class: every feature pointing opposite its class weight scores s cos(pi + m)
  against s cos(pi) for the others, a loss of log(1 + 9 exp(-s (1 - cos m))) = 0.21 for s 30,
  m 0.5 and 10 classes, at chance accuracy. The fallback keeps the target logit falling in theta.
  """
  # cos(theta + m) = cos cos m - sin sin m: no arccos, whose gradient is infinite at +-1.
  sin = jnp.sqrt(jnp.clip(1.0 - cos * cos, 1e-7, 1.0))
  shifted = cos * math.cos(margin) - sin * math.sin(margin)
  return jnp.where(cos > math.cos(math.pi - margin), shifted, cos - margin * math.sin(margin))


def Head(num_classes: int, scale: float = 30.0, margin: float = 0.5):  # noqa: N802
  return CosineHead(num_classes, scale=scale,
                    target=functools.partial(arcface_target, margin=margin))


def check(scale, margin):
  if not scale > 0:
    raise ValueError(f'scale must be > 0, got {scale!r}')
  # cos(0 + m) must beat a class at 90 degrees, cos(pi/2) = 0: m < pi/2.
  if not 0 <= margin < math.pi / 2:
    raise ValueError(f'margin must be in [0, pi/2) radians (at m >= pi/2 an aligned feature '
                     f'scores no more than an orthogonal class), got {margin!r}')
