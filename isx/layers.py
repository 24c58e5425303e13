"""The inward-scale layer (the paper's Eq. 2) and the classifier heads it is compared with.

Every head maps an embedding [N, D] to logits [N, C]. Margin heads (CosFace, ArcFace) use
the labels only when given (training); at eval they return the plain scaled cosines.
"""
import math
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

DEFAULT_EPS = 1e-12


def check_xi(xi) -> float:
  """Returns xi as a float, or raises a one-line error for a value the layer cannot use."""
  try:
    value = float(xi)
  except (TypeError, ValueError):
    raise ValueError(f'xi must be a positive finite number, got {xi!r}') from None
  if not math.isfinite(value) or value <= 0:
    raise ValueError(f'xi must be a positive finite number, got {xi!r}; the paper uses 100')
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


def _l2_normalize(x, axis=-1, eps=DEFAULT_EPS):
  return x * jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True) + eps)


class SoftmaxHead(nn.Module):
  """Plain FC (W x + b) in front of softmax: the paper's classifier."""
  num_classes: int
  kernel_init: nn.initializers.Initializer = nn.initializers.xavier_uniform()

  @nn.compact
  def __call__(self, x, labels=None):
    del labels
    return nn.Dense(self.num_classes, kernel_init=self.kernel_init, name='fc')(x)


class L2SoftmaxHead(nn.Module):
  """L2-constrained softmax (Ranjan et al. 2017): FC on alpha * x / ||x||."""
  num_classes: int
  alpha: float = 16.0
  kernel_init: nn.initializers.Initializer = nn.initializers.xavier_uniform()

  @nn.compact
  def __call__(self, x, labels=None):
    del labels
    return nn.Dense(self.num_classes, kernel_init=self.kernel_init,
                    name='fc')(self.alpha * _l2_normalize(x))


class CosineHead(nn.Module):
  """s * cos(theta) with normalised features and class weights, no bias.

  margin_type 'none' is NormFace (Wang et al. 2017); 'cosface' subtracts m from the target
  cosine (Wang et al. 2018); 'arcface' adds m to the target angle (Deng et al. 2019).
  """
  num_classes: int
  scale: float = 16.0
  margin: float = 0.0
  margin_type: str = 'none'

  @nn.compact
  def __call__(self, x, labels=None):
    w = self.param('kernel', nn.initializers.xavier_uniform(), (x.shape[-1], self.num_classes))
    cos = _l2_normalize(x) @ _l2_normalize(w, axis=0)
    if labels is None or self.margin_type == 'none':
      return self.scale * cos
    onehot = jax.nn.one_hot(labels, self.num_classes, dtype=cos.dtype)
    if self.margin_type == 'cosface':
      target = cos - self.margin
    elif self.margin_type == 'arcface':
      # Clip away from +-1 so arccos has a finite gradient.
      theta = jnp.arccos(jnp.clip(cos, -1.0 + 1e-6, 1.0 - 1e-6))
      target = jnp.cos(theta + self.margin)
    else:
      raise ValueError(f"unknown margin_type {self.margin_type!r}; use 'none', 'cosface' or 'arcface'")
    return self.scale * jnp.where(onehot > 0, target, cos)


HEADS = ('softmax', 'l2_softmax', 'normface', 'cosface', 'arcface')


def make_head(name: str, num_classes: int, scale: Optional[float] = None,
              margin: Optional[float] = None) -> nn.Module:
  """Builds a classifier head by config name (see HEADS)."""
  if name == 'softmax':
    return SoftmaxHead(num_classes)
  if name == 'l2_softmax':
    return L2SoftmaxHead(num_classes, alpha=scale or 16.0)
  if name == 'normface':
    return CosineHead(num_classes, scale=scale or 16.0)
  if name == 'cosface':
    return CosineHead(num_classes, scale=scale or 30.0, margin=0.35 if margin is None else margin,
                      margin_type='cosface')
  if name == 'arcface':
    return CosineHead(num_classes, scale=scale or 30.0, margin=0.5 if margin is None else margin,
                      margin_type='arcface')
  raise ValueError(f'unknown head {name!r}; choose one of {", ".join(HEADS)}')
