"""CosFace (Wang et al. 2018): s * (cos(theta_y) - m) for the target class."""
from isx.heads._cosine import CosineHead


def Head(num_classes: int, scale: float = 30.0, margin: float = 0.35):  # noqa: N802
  return CosineHead(num_classes, scale=scale, margin=margin, margin_type='cosface')
