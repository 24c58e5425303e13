"""isx: inward scaled hypersphere embeddings in JAX/Flax."""
