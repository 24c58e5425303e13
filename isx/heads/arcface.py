"""ArcFace (Deng et al. 2019): s * cos(theta_y + m) for the target class."""
import functools

from isx.heads._cosine import CosineHead

Head = functools.partial(CosineHead, scale=30.0, margin=0.5, margin_type='arcface')
