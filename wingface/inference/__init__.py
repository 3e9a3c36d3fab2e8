"""Inference: model stages, the cascade that chains them, and the `Landmarker` API."""
