"""Images as the step sees them: uint8 NHWC -> float32 in [0, 1], then what config.dataset asks
(per-image standardisation, random crop + flip), inside the compiled step."""
import jax
import jax.numpy as jnp


def preprocess(images, dataset_config, rng=None):
  """uint8 NHWC -> float32 in [0, 1]; per-image standardisation and augmentation if asked."""
  x = images.astype(jnp.float32) / 255.0
  if rng is not None and dataset_config.augment:
    x = augment(rng, x)
  if dataset_config.standardize:
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    std = jnp.maximum(jnp.std(x, axis=(1, 2, 3), keepdims=True), 1.0 / jnp.sqrt(x[0].size))
    x = (x - mean) / std
  return x


def augment(rng, x, pad=4):
  """Random crop from a zero-padded image + horizontal flip, per example, on device."""
  n, h, w, _ = x.shape
  crop_rng, flip_rng = jax.random.split(rng)
  offsets = jax.random.randint(crop_rng, (n, 2), 0, 2 * pad + 1)
  padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, img.shape[-1]))
  x = jax.vmap(crop)(padded, offsets)
  flip = jax.random.bernoulli(flip_rng, 0.5, (n, 1, 1, 1))
  return jnp.where(flip, x[:, :, ::-1], x)
