"""Readers for the native annotation formats of landmark datasets; see `wingface.data.datasets`."""
