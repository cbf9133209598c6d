"""Run by tests/train/test_ddp.py under ``torchrun --nproc_per_node=2``: each rank's share of the
sampler's batches, as the ranks really see them, gathered with riotvit's collectives.

Usage: ``torchrun --standalone --nproc_per_node=2 ddp_probe.py OUT.json``; rank 0 writes OUT.json.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(out: str) -> None:
    from riotvit.train import ddp
    from riotvit.train.data import epoch_batches

    labels = np.r_[np.ones(30), np.zeros(170)]  # 15% riot crops
    rows = np.arange(200)
    with ddp.process_group("cpu"):
        rank, world = ddp.rank(), ddp.world_size()
        probe = {}
        for name, ratio in (("balanced", 0.25), ("natural", None)):
            batches = epoch_batches(rows, labels, 32, np.random.default_rng(5), ratio, rank, world)
            width = max(b.size for b in batches)
            padded = np.full((len(batches), width), -1, dtype=np.int64)
            for i, b in enumerate(batches):
                padded[i, : b.size] = b
            # one row per rank (its batches, padded with -1), in rank order on every rank
            probe[name] = ddp.gather_rows({"rows": padded.reshape(1, -1)})["rows"].reshape(world, len(batches), width)
        shard = ddp.gather_rows({"x": ddp.shard_rows(np.arange(7, dtype=np.float32))})["x"]  # uneven shards: 4 + 3
        total = ddp.sum_values([rank + 1.0])[0]
        decided = ddp.broadcast_values([10.0 + rank])[0]
        if ddp.is_main():
            with open(out, "w") as f:
                json.dump({"world": world, "shard": shard.tolist(), "total": total, "decided": decided,
                           **{k: v.tolist() for k, v in probe.items()}}, f)


if __name__ == "__main__":
    main(sys.argv[1])
