"""Reusable Keras building blocks shared by the tasks' architectures."""
