"""CosFace (Wang et al. 2018): s * (cos(theta_y) - m) for the target class."""
import functools

from isx.heads._cosine import CosineHead

Head = functools.partial(CosineHead, scale=30.0, margin=0.35, margin_type='cosface')
