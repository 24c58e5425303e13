"""Top-1 accuracy of the logits."""
import numpy as np


def compute(outputs) -> dict:
  return {'accuracy': float(np.mean(np.argmax(outputs['logits'], -1) == outputs['label']))}
