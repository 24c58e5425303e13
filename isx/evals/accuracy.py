"""Top-1 accuracy of the logits."""
import numpy as np

# Undefined on classes the head never saw: not computed when held-out classes are scored.
ON_TRAINING_CLASSES = True


def compute(outputs) -> dict:
  return {'accuracy': float(np.mean(np.argmax(outputs['logits'], -1) == outputs['label']))}


def summarize(metrics):
  if 'accuracy' not in metrics:
    return '', set()
  return f'accuracy {100 * metrics["accuracy"]:.2f}%', {'accuracy'}
