"""Does seeing the previous image date help?  ``model.temporal`` none vs stack vs tokens.

Runs the demo pipeline (synthetic city at 4 yearly dates, rolling origin, test origin
2022-06-15, 5 held-out block folds) up to ``train`` once per mode, reusing the sample, tiles and
samples, and prints each mode's forecast skill next to the baselines on the same crops: all
held-out crops and the onset cells (no riot in the 12 months before the origin).

    python bench/bench_temporal.py [--out runs/bench_temporal] [--modes none,stack,tokens]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("riotvit", "image-free riotvit", "history + census", "persistence")


def run_mode(out: Path, mode: str) -> tuple[dict, float]:
    t0 = time.perf_counter()
    cmd = [str(Path(sys.executable).parent / "riotvit"), "run", str(ROOT / "pipelines" / "demo.yaml"), "--out", str(out),
           "--until", "train", "--quiet", "--set", f"train.model.temporal={mode}"]
    subprocess.run(cmd, check=True, cwd=ROOT)
    metrics = json.loads((out / "model" / "metrics.json").read_text())
    shutil.copy(out / "model" / "metrics.json", out / f"metrics_{mode}.json")
    return metrics, time.perf_counter() - t0


def scores(metrics: dict) -> dict:
    fc = metrics.get("forecast", metrics)
    return fc["scores"][max(fc["scores"])]  # the last (test) origin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_temporal")
    ap.add_argument("--modes", default="none,stack,tokens")
    args = ap.parse_args()
    rows = []
    for mode in args.modes.split(","):
        metrics, secs = run_mode(args.out, mode)
        sc = scores(metrics)
        rows.append((mode, secs, sc))
        print(f"{mode}: {secs:.0f} s", flush=True)
    print("\n| temporal | scope | " + " | ".join(f"{m} AUPR" for m in MODELS) + " | riotvit ECE | train s |")
    print("|---|---|" + "---|" * (len(MODELS) + 2))
    for mode, secs, sc in rows:
        for scope in ("held-out blocks", "held-out blocks / onset"):
            s = sc.get(scope, {})
            aupr = [f"{s.get(m, {}).get('aupr', float('nan')):.3f}" for m in MODELS]
            ece = s.get("riotvit", {}).get("ece", float("nan"))
            print(f"| {mode} | {scope} | " + " | ".join(aupr) + f" | {ece:.3f} | {secs:.0f} |")


if __name__ == "__main__":
    main()
