"""`python tests/chaos_main.py ARGS` is `python -m isx.main ARGS` with a fault injected from
outside isx: with ISX_CHAOS_NAN_STEP=N, the loss of train step N comes out NaN, as a diverging
run's would (tests/test_chaos.py)."""
import os
import runpy
import sys

nan_step = os.environ.get('ISX_CHAOS_NAN_STEP')
if nan_step:
  import jax.numpy as jnp

  from isx import step

  original = step.train_step

  def train_step(state, batch, rng, **kwargs):
    new_state, metrics = original(state, batch, rng, **kwargs)
    diverged = state.step + 1 == int(nan_step)
    return new_state, {**metrics, 'loss': jnp.where(diverged, jnp.nan, metrics['loss'])}

  step.train_step = train_step

sys.argv[0] = 'isx.main'
runpy.run_module('isx.main', run_name='__main__', alter_sys=True)
