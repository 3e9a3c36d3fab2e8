"""Evaluation: NME/FR/AUC metrics (``metrics``), plots (``plots``) and evaluation runs.

Submodules are imported explicitly so that importing this package stays light.
"""
