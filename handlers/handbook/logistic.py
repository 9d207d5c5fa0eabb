"""The logistic function, shared by the decision model, the small-talk reading and their fitting."""

from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), clipped so that a very sure row cannot overflow."""
    return 1 / (1 + np.exp(-np.clip(z, -30, 30)))
