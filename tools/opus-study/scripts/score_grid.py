#!/usr/bin/env python3
"""PESQ-NB of the clean-channel grid (see `opus-study grid`). usage: score_grid.py AUDIO_DIR GRID_DIR"""
import os, sys, wave
import numpy as np
from pesq import pesq

def read(path):
    with wave.open(path) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32)

audio_dir, grid_dir = sys.argv[1], sys.argv[2]
ref = read(os.path.join(audio_dir, "ref8k.wav"))
segs = [int(x) for x in open(os.path.join(audio_dir, "segments.txt")).read().split()]
bounds, o = [], 0
for s in segs:
    bounds.append((o, o + s)); o += s
rows = {}
for tag in ("v13", "v16", "v16dnn"):
    p = os.path.join(grid_dir, f"grid-{tag}.tsv")
    if not os.path.exists(p):
        continue
    for line in open(p):
        lib, fs, kbps, cx, fec, nbytes, lbrr, path = line.rstrip("\n").split("\t")
        deg = read(path)
        m = np.mean([pesq(8000, ref[a:b], deg[a:b], "nb") for a, b in bounds])
        rows[(lib.split(" ")[1], fs, int(kbps), int(cx), fec)] = (m, float(nbytes), float(lbrr))
print("\n### Clean channel (no loss): PESQ-NB after µ-law / bytes per packet / share of packets carrying LBRR\n")
print("| lib | input | kbit/s | FEC | cx0 | cx1 | cx5 | cx10 |")
print("|---|---|---|---|---|---|---|---|")
keys = sorted({(k[0], k[1], k[2], k[4]) for k in rows}, key=lambda k: (k[0], int(k[1]), k[2], k[3]))
for lib, fs, kbps, fec in keys:
    cells = []
    for cx in (0, 1, 5, 10):
        v = rows.get((lib, fs, kbps, cx, fec))
        cells.append("–" if v is None else f"{v[0]:.2f} / {v[1]:.0f} B / {v[2]*100:.0f} %")
    print(f"| {lib} | {'NB 8k' if fs == '8000' else 'WB 16k'} | {kbps} | {'on' if fec == '1' else 'off'} | " + " | ".join(cells) + " |")
