"""Drop-in replacements for two stock ops whose gradients XLA:CPU lowers slowly.

Same values and the same gradients as the stock ops (tests/test_ops.py checks both), only
a different lowering.
"""
import functools

import jax
import jax.numpy as jnp


def _pads(size, k, s, padding):
  """(low pad, high pad, output size) of one spatial dim, as lax.reduce_window computes them."""
  if padding == 'VALID':
    return 0, 0, (size - k) // s + 1
  out = -(-size // s)
  total = max((out - 1) * s + k - size, 0)
  return total // 2, total - total // 2, out


def _pool_taps(x, window, strides, padding):
  """The kh*kw strided views of the -inf padded input, one per window tap, row-major."""
  (kh, kw), (sh, sw) = window, strides
  n, h, w, c = x.shape
  lh, hh, oh = _pads(h, kh, sh, padding)
  lw, hw, ow = _pads(w, kw, sw, padding)
  xp = jnp.pad(x, ((0, 0), (lh, hh), (lw, hw), (0, 0)), constant_values=-jnp.inf)
  taps = [(i, j, jax.lax.slice(xp, (0, i, j, 0), (n, i + sh * (oh - 1) + 1, j + sw * (ow - 1) + 1, c),
                               (1, sh, sw, 1))) for i in range(kh) for j in range(kw)]
  return xp.shape, (lh, lw), taps


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, window, strides, padding):
  return functools.reduce(jnp.maximum, [t for _, _, t in _pool_taps(x, window, strides, padding)[2]])


def _max_pool_fwd(x, window, strides, padding):
  return _max_pool(x, window, strides, padding), x


def _max_pool_bwd(window, strides, padding, x, g):
  # The stock gradient is a select-and-scatter, which XLA:CPU expands into full-size s32 iotas,
  # a variadic (value, index) reduce-window and a scatter (~1/4 of a SimpleNet step). These
  # per-tap selects fuse into a few elementwise loops instead.
  pshape, (lh, lw), taps = _pool_taps(x, window, strides, padding)
  y = _max_pool(x, window, strides, padding)
  (sh, sw), (oh, ow) = strides, y.shape[1:3]
  taken, dxp = jnp.zeros(y.shape, bool), jnp.zeros(pshape, g.dtype)
  for i, j, tap in taps:  # the first maximum in row-major order gets it, as in select-and-scatter
    hit = (tap == y) & ~taken
    taken = taken | hit
    dxp = dxp + jax.lax.pad(jnp.where(hit, g, 0), jnp.zeros((), g.dtype), (
        (0, 0, 0), (i, pshape[1] - i - sh * (oh - 1) - 1, sh - 1),
        (j, pshape[2] - j - sw * (ow - 1) - 1, sw - 1), (0, 0, 0)))
  return (dxp[:, lh:lh + x.shape[1], lw:lw + x.shape[2]],)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool(x, window_shape, strides=None, padding='VALID'):
  """flax.linen.max_pool for NHWC images and 2-D windows: same values, and the same gradient
  (bit-identical for non-overlapping windows; summation order differs where windows overlap)."""
  return _max_pool(x, tuple(window_shape), tuple(strides or (1, 1)), padding)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, **kwargs):
  """lax.conv_general_dilated, except that a stride-1 1x1 NHWC conv is an einsum: XLA:CPU then
  computes its weight gradient as a matmul instead of a whole-image-window convolution (5x
  faster for GoogleNet's 1x1 layers). Passed to nn.Conv, so the parameter tree is unchanged."""
  nhwc = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ('NHWC', 'HWIO', 'NHWC'))
  ones = lambda d: d is None or all(v == 1 for v in d)
  no_pad = padding in ('SAME', 'VALID') or all(tuple(p) == (0, 0) for p in padding)
  if (rhs.shape[:2] == (1, 1) and tuple(window_strides) == (1, 1) and ones(lhs_dilation)
      and ones(rhs_dilation) and dimension_numbers == nhwc and no_pad
      and kwargs.get('feature_group_count', 1) == 1 and kwargs.get('batch_group_count', 1) == 1):
    return jnp.einsum('nhwc,co->nhwo', lhs, rhs[0, 0], precision=kwargs.get('precision'),
                      preferred_element_type=kwargs.get('preferred_element_type'))
  return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                      rhs_dilation, dimension_numbers, **kwargs)
