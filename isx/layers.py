"""The inward-scale layer (the paper's Eq. 2) and the PReLU in front of the classifier head
(the heads it is compared with are in isx/heads)."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from isx import errors

DEFAULT_EPS = 1e-12


def check_xi(xi) -> float:
  """Returns xi as a float, or raises a one-line error for a value the layer cannot use."""
  try:
    value = float(xi)
  except (TypeError, ValueError):
    raise errors.ConfigError(f'xi must be a positive finite number, got {xi!r}') from None
  if not math.isfinite(value) or value <= 0:
    raise errors.ConfigError(f'xi must be a positive finite number, got {xi!r}; the paper uses 100')
  return value


def inward_scale(x, xi=100.0, eps=DEFAULT_EPS, axis=-1):
  """IS(x, xi) = x / (xi * sqrt(sum(x**2, axis) + eps)): the paper's Eq. 2, eps inside the root.

  Every row lands on the sphere of radius 1/xi. eps keeps an all-zero row (and its gradient)
  finite: the output is 0 and the Jacobian there is I / (xi * sqrt(eps)).
  """
  if not isinstance(xi, jax.Array):  # a traced xi cannot be checked; a Python one can
    xi = check_xi(xi)
  # The norm in float32 at least: a bfloat16 sum of ~1k squares keeps 8 bits, so rows would
  # land up to ~1% off the 1/xi sphere (float16 squares overflow past 256). Output in x's dtype.
  wide = x.astype(jnp.promote_types(x.dtype, jnp.float32))
  norm = jnp.sqrt(jnp.sum(jnp.square(wide), axis=axis, keepdims=True) + eps)
  return (wide / (xi * norm)).astype(x.dtype)


def inward_scale_vjp_reference(x, g, xi=100.0, eps=DEFAULT_EPS, paper_simplified=False):
  """dL/dx of IS written out by hand (the paper's Appendix B), for one vector x and cotangent g.

  With n = sqrt(sum x^2 + eps) and y = x / (xi n), the complete chain rule is

      dL/dx_i = (g_i - x_i * sum_j g_j x_j / n^2) / (xi n)

  The second term (the paper's gamma-hat: the path through the norm) is what the paper drops
  "because our main objective is to demonstrate gradient w.r.t. the introduced IS"; with
  paper_simplified=True this returns the paper's g / (xi n), which is NOT the true gradient
  (tests/test_layers.py shows autodiff matches only the complete form).
  """
  n = jnp.sqrt(jnp.sum(x * x) + eps)
  if paper_simplified:
    return g / (xi * n)
  return (g - x * jnp.dot(g, x) / n**2) / (xi * n)


class InwardScale(nn.Module):
  """Linen wrapper around inward_scale; xi is fixed (not learned), as in the paper."""
  xi: float = 100.0
  eps: float = DEFAULT_EPS

  @nn.compact
  def __call__(self, x):
    return inward_scale(x, check_xi(self.xi), self.eps)


class PReLU(nn.Module):
  """Per-feature PReLU, slopes initialised to 0.25 (He et al. 2015)."""
  init_slope: float = 0.25

  @nn.compact
  def __call__(self, x):
    slope = self.param('slope', nn.initializers.constant(self.init_slope), (x.shape[-1],))
    return jnp.where(x >= 0, x, slope * x)


def l2_normalize(x, axis=-1, eps=DEFAULT_EPS):
  return x * jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True) + eps)
