"""isx.ops: the fast max-pool gradient and the 1x1 conv as einsum equal the stock ops."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from isx import ops

POOLS = [((2, 2), (2, 2), 'VALID', (3, 28, 28, 5)),   # SimpleNet, LeNet
         ((2, 2), (2, 2), 'VALID', (2, 7, 7, 3)),     # odd size: the last row/column is dropped
         ((3, 3), (1, 1), 'SAME', (2, 8, 8, 4)),      # GoogleNet's pool branch
         ((3, 3), (2, 2), 'SAME', (2, 9, 9, 4))]      # GoogleNet's stage pools


@pytest.mark.parametrize('window,strides,padding,shape', POOLS)
def test_max_pool_matches_flax_values_and_gradient(window, strides, padding, shape):
  x = jax.random.normal(jax.random.key(0), shape)
  x = x.at[:, ::3].set(0.0)  # ties: the first maximum in the window must get the gradient
  g = jax.random.normal(jax.random.key(1), nn.max_pool(x, window, strides, padding).shape)
  stock = lambda v: jnp.sum(nn.max_pool(v, window, strides, padding) * g)
  ours = lambda v: jnp.sum(ops.max_pool(v, window, strides, padding) * g)
  np.testing.assert_array_equal(ops.max_pool(x, window, strides, padding),
                                nn.max_pool(x, window, strides, padding))
  got, want = jax.grad(ours)(x), jax.grad(stock)(x)
  if strides == window:  # non-overlapping: each input gets at most one term, so bit-identical
    np.testing.assert_array_equal(got, want)
  else:
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_max_pool_gradient_goes_to_the_first_maximum_only():
  x = jnp.zeros((1, 2, 2, 1))
  grad = jax.grad(lambda v: ops.max_pool(v, (2, 2), (2, 2)).sum())(x)
  np.testing.assert_array_equal(grad[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize('kernel,strides', [(1, 1), (3, 1), (1, 2)])
def test_conv_hook_matches_stock_conv(kernel, strides):
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 6))
  stock = nn.Conv(4, (kernel, kernel), strides, padding='SAME')
  ours = nn.Conv(4, (kernel, kernel), strides, padding='SAME',
                 conv_general_dilated=ops.conv_general_dilated)
  params = stock.init(jax.random.key(1), x)
  loss = lambda m: lambda p, v: jnp.sum(jnp.sin(m.apply(p, v)))
  np.testing.assert_allclose(ours.apply(params, x), stock.apply(params, x), rtol=1e-5, atol=1e-5)
  for got, want in zip(jax.tree.leaves(jax.grad(loss(ours), (0, 1))(params, x)),
                       jax.tree.leaves(jax.grad(loss(stock), (0, 1))(params, x))):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
