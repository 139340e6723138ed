"""Does an index built elsewhere rank the same? Two builds, as two different machines would make them.

    .venv/bin/python benchmarks/reproducibility.py

Machine A: `strategy-bot index` on one OpenMP thread, this CPU's own OpenBLAS kernel.
Machine B: on two threads, OpenBLAS forced to another kernel (Prescott) and numpy's AVX-512
loops switched off. The script compares every file of the two builds byte for byte (meta.json
without its time stamps), then ranks every eval question under both and counts differences in
the top five and in the scores. Both builds are made in temporary folders.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EVAL_FILES = [REPO / "eval" / "strategy_qa.jsonl", REPO / "eval" / "holdout_qa.jsonl",
              REPO.parent / "shared" / "eval" / "public_qa.jsonl"]
OTHER_MACHINE = {"OPENBLAS_CORETYPE": "Prescott",
                 "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"}
MACHINES = {"A (1 thread, native BLAS)": {"INDEX_THREADS": "1", "EMBEDDING_THREADS": "1"},
            "B (2 threads, Prescott BLAS, no AVX-512)": {"INDEX_THREADS": "2", "EMBEDDING_THREADS": "2",
                                                         **OTHER_MACHINE}}
VOLATILE_META = ("built_at", "built_by")


def build(data_dir: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    script = Path(sys.executable).parent / "strategy-bot"
    subprocess.run([str(script), "index", "--json"], env={**os.environ, "DATA_DIR": str(data_dir), **env},
                   check=True, capture_output=True)
    return time.perf_counter() - started


def build_files(data_dir: Path) -> dict[str, bytes]:
    folder = (data_dir / "index").resolve()
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    meta = json.loads(files.pop("meta.json"))
    files["meta.json"] = json.dumps({k: v for k, v in meta.items() if k not in VOLATILE_META}, sort_keys=True).encode()
    return files


def scores(data_dir: Path, env: dict[str, str], questions: list[str]) -> dict:
    completed = subprocess.run([sys.executable, str(REPO / "tests" / "search_scores.py"), str(data_dir)],
                               input="\n".join(questions), capture_output=True, text=True, encoding="utf-8",
                               env={**os.environ, **env}, check=True)
    return json.loads(completed.stdout)


def main() -> None:
    questions = [json.loads(line)["q"] for path in EVAL_FILES if path.is_file()
                 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {name: Path(tmp) / f"data{i}" for i, name in enumerate(MACHINES)}
        for name, env in MACHINES.items():
            print(f"build on {name}: {build(dirs[name], env):.1f} s")
        (a_name, a_dir), (b_name, b_dir) = dirs.items()
        a_files, b_files = build_files(a_dir), build_files(b_dir)
        differing = [name for name in a_files if a_files[name] != b_files.get(name)]
        print(f"files compared: {len(a_files)}; differing: {differing or 'none'}")
        # Each build searched on its own machine, as two deployments would be.
        a_scores = scores(a_dir, MACHINES[a_name], questions)
        b_scores = scores(b_dir, MACHINES[b_name], questions)
    def top5(scores: dict, question: str) -> list[int]:
        return [hit[0] for hit in scores[question]["hits"][:5]]

    moved = sum(1 for q in questions if top5(a_scores, q) != top5(b_scores, q))
    exact = sum(1 for q in questions if a_scores[q] == b_scores[q])
    print(f"questions: {len(questions)}; top-5 order differs on {moved}; every score identical on {exact}")


if __name__ == "__main__":
    main()
