#!/usr/bin/env python3
"""A tree of many small files for bench/clone.py: 500 folders of 400 random files of 0.2-2 KB
(200,000 files, 0.22 GB), the shape of a dataset of JSON records.

Usage: bench/make-many.py [DIR]   (default /dev/shm/many)
"""
import os, random, sys

root = sys.argv[1] if len(sys.argv) > 1 else "/dev/shm/many"
rnd = random.Random(7)
for i in range(500):
    d = os.path.join(root, "data", f"shard{i:03d}")
    os.makedirs(d, exist_ok=True)
    for f in range(400):
        with open(os.path.join(d, f"item{f:04d}.json"), "wb") as out:
            out.write(os.urandom(rnd.randint(200, 2000)))
print(f"made 200,000 files under {root}")
