"""Labelers: outcome (a verdict on a whole solution) and process (a label per step)."""
