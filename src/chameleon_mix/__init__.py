"""Chameleon data mixing: domain weights from kernel ridge leverage scores of domain embeddings."""

__version__ = "0.1.0"
