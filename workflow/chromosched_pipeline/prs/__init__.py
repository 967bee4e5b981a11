"""Polygenic risk scores from imputed dosages."""
