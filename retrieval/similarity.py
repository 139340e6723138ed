"""Similarities and normalisation that come out the same on every machine.

Why this module exists: a float32 matrix product goes through BLAS, and OpenBLAS picks
its kernels by CPU (Haswell, SkylakeX, Zen...), each summing in its own order. Measured
here, the fused search scores of the 240 eval questions differed by up to 2.2e-5 between
two core types; reciprocal-rank fusion turns any such difference between two near-tied
passages into swapped ranks, so a test could pass on one machine and fail on another.

Products are taken in float64 from the stored float32 vectors (kernel differences shrink
to ~1e-16) and rounded to `DECIMALS` places, so every kernel yields the same numbers
(a value would have to sit within 1e-16 of a rounding boundary to differ). Ties left by
the rounding are broken by position, never by the sort algorithm: see `rank`.
"""
from __future__ import annotations

import numpy as np

DECIMALS = 9  # far above float64 noise (1e-16), far below any score gap that matters (1e-4)


def exact(values: np.ndarray) -> np.ndarray:
    """float64 values rounded to DECIMALS: the form every score is compared in."""
    return np.round(np.asarray(values, dtype=np.float64), DECIMALS)


def as_float64(matrix: np.ndarray) -> np.ndarray:
    """A float64 copy of stored vectors, made once per loaded index (a few MB)."""
    return np.ascontiguousarray(matrix, dtype=np.float64)


def cosines(matrix64: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Cosine of `vector` with every row of `matrix64` (rows and vector normalised)."""
    if not len(matrix64):
        return np.zeros(0, dtype=np.float64)
    return exact(matrix64 @ np.asarray(vector, dtype=np.float64))


def pairwise(rows64: np.ndarray, columns64: np.ndarray) -> np.ndarray:
    """Cosines of every row with every column vector (rows x columns)."""
    return exact(rows64 @ columns64.T)


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32; the norm is summed in float64 so the
    result does not depend on how a CPU's SIMD loop orders the sum."""
    wide = np.asarray(matrix, dtype=np.float64)
    norms = np.sqrt(np.sum(wide * wide, axis=-1, keepdims=True))
    norms[norms == 0] = 1.0
    return (wide / norms).astype(np.float32)


def rank(scores: np.ndarray) -> np.ndarray:
    """Positions ordered best first; equal scores keep their position order."""
    return np.argsort(-exact(scores), kind="stable")
