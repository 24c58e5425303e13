"""Top-1 accuracy of the logits."""
import numpy as np


def compute(outputs, config) -> dict:
  del config
  return {'accuracy': float(np.mean(np.argmax(outputs['logits'], -1) == outputs['label']))}
