#!/usr/bin/env python3
"""PESQ-NB (ITU-T P.862 via `pesq`) of every decoded file in the manifests, and the tables.

Each file is the caller's leg: decoded at 8 kHz, through µ-law and back, sample-aligned with
the 8 kHz reference. It is scored per speech segment (three of ~18 s, lengths in
segments.txt) and the segment scores are averaged.

usage: score.py AUDIO_DIR OUT_DIR [BENCH_TSV...]
"""
import hashlib
import json
import os
import sys
import wave
from collections import defaultdict

import numpy as np
from pesq import pesq


def read(path):
    with wave.open(path) as w:
        assert w.getframerate() == 8000 and w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32)


def main():
    audio_dir, out_dir = sys.argv[1], sys.argv[2]
    ref = read(os.path.join(audio_dir, "ref8k.wav"))
    segs = [int(x) for x in open(os.path.join(audio_dir, "segments.txt")).read().split()]
    bounds, o = [], 0
    for s in segs:
        bounds.append((o, o + s))
        o += s

    configs = {}
    order = []
    for tag in ("v13", "v16", "v16dnn"):
        p = os.path.join(out_dir, f"configs-{tag}.tsv")
        if os.path.exists(p):
            for line in open(p):
                f = line.rstrip("\n").split("\t")
                configs[f[0]] = f
                order.append(f[0])

    rows = []
    for tag in ("v13", "v16", "v16dnn"):
        p = os.path.join(out_dir, f"manifest-{tag}.tsv")
        if os.path.exists(p):
            rows += [l.rstrip("\n").split("\t") for l in open(p) if l.strip()]

    # Scores are cached by file content: unchanged outputs are not scored again.
    cache_path = os.path.join(out_dir, "pesq-cache.json")
    cache = json.load(open(cache_path)) if os.path.exists(cache_path) else {}
    new_cache = {}
    scores_path = os.path.join(out_dir, "scores.tsv")
    scores = defaultdict(list)
    counts = defaultdict(lambda: np.zeros(4))
    with open(scores_path, "w") as out:
        out.write("config\treceiver\tcondition\tseed\tloss\tnormal\tfec\tdred\tplc\tpesq\tseg_scores\n")
        for r in rows:
            cid, rx, cond, seed, loss, normal, fec, dred, plc, path = r
            key = hashlib.sha1(open(path, "rb").read()).hexdigest()
            if key in cache:
                seg = cache[key]
            else:
                deg = read(path)
                seg = [pesq(8000, ref[a:b], deg[a:b], "nb") for a, b in bounds]
                cache[key] = seg
            new_cache[key] = seg
            m = float(np.mean(seg))
            scores[(cid, rx, cond)].append(m)
            counts[(cid, rx, cond)] += np.array([int(normal), int(fec), int(dred), int(plc)])
            out.write("\t".join(r[:9] + [f"{m:.3f}", ",".join(f"{s:.3f}" for s in seg)]) + "\n")

    json.dump(new_cache, open(cache_path, "w"))

    conds = []
    for r in rows:
        if r[2] not in conds:
            conds.append(r[2])

    def cell(key):
        v = scores.get(key)
        if not v:
            return "–"
        if len(v) == 1:
            return f"{v[0]:.2f}"
        return f"{min(v):.2f} / **{np.mean(v):.2f}** / {max(v):.2f}"

    print("\n### PESQ-NB (µ-law leg), min / **mean** / max over 5 seeds — receiver: brief's model\n")
    print("| config | lib | bytes/pkt (frame+extra) | LBRR pkts | DRED pkts, mean reach | " + " | ".join(conds) + " |")
    print("|---|---|---|---|---|" + "---|" * len(conds))
    for cid in order:
        f = configs[cid]
        lib = f[1].split(" ")[1]
        dred = f"{float(f[10])*100:.0f} %, {float(f[11]):.0f} ms" if float(f[10]) > 0 else "–"
        print(
            f"| {cid} | {lib} enc cx{f[4]} dec cx{f[5]} | {float(f[6]):.1f} ({float(f[7]):.1f}+{float(f[8]):.1f}) "
            f"| {float(f[9])*100:.0f} % | {dred} | "
            + " | ".join(cell((cid, "oracle", c)) for c in conds)
            + " |"
        )

    rxs = sorted({r[1] for r in rows if r[1] != "oracle"})
    if rxs:
        print("\n### DRED configs with a real jitter buffer (only the last D frames of a gap can use the next packet)\n")
        lossy = [c for c in conds if c != "none"]
        print("| config | receiver | " + " | ".join(lossy) + " |")
        print("|---|---|" + "---|" * len(lossy))
        for cid in order:
            if not any((cid, rx, c) in scores for rx in rxs for c in lossy):
                continue
            for rx in ["oracle"] + rxs:
                print(f"| {cid} | {rx} | " + " | ".join(cell((cid, rx, c)) for c in lossy) + " |")

    print("\n### How lost frames were rebuilt (sum over 5 seeds: FEC / DRED / PLC)\n")
    lossy = [c for c in conds if c != "none"]
    print("| config | receiver | " + " | ".join(lossy) + " |")
    print("|---|---|" + "---|" * len(lossy))
    for cid in order:
        for rx in ["oracle"] + rxs:
            if (cid, rx, lossy[0]) not in counts:
                continue
            cells = []
            for c in lossy:
                n = counts[(cid, rx, c)]
                cells.append(f"{int(n[1])} / {int(n[2])} / {int(n[3])}")
            print(f"| {cid} | {rx} | " + " | ".join(cells) + " |")

    print("\n### Alignment check (clean decode vs reference: best lag in samples, correlation)\n")
    print("| config | lag | r |")
    print("|---|---|---|")
    for cid in order:
        f = configs[cid]
        print(f"| {cid} | {f[12]} | {f[13]} |")


if __name__ == "__main__":
    main()
