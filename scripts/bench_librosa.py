#!/usr/bin/env python3
"""Times librosa's MFCC chain on the given files for `ainrnn bench features`: load at
22,050 Hz (not timed), then melspectrogram + power_to_db/mfcc (20) + delta + delta-delta with
librosa's defaults (n_fft 2048, hop 512, 128 mels), with numpy's default threading; the best of
--passes passes over the files is reported. Prints one JSON object on stdout."""
import argparse
import json
import time

import librosa
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    ys = [librosa.load(f, sr=22050, mono=True, duration=a.seconds)[0] for f in a.files]

    def chain(y):
        S = librosa.feature.melspectrogram(y=y, sr=22050)
        m = librosa.feature.mfcc(S=librosa.power_to_db(S), n_mfcc=20)
        return m, librosa.feature.delta(m), librosa.feature.delta(m, order=2)

    chain(ys[0])  # warm-up
    best = float("inf")
    for _ in range(max(a.passes, 1)):
        t0 = time.perf_counter()
        for y in ys:
            chain(y)
        best = min(best, (time.perf_counter() - t0) / len(ys))
    print(json.dumps({"librosa": librosa.__version__, "numpy": np.__version__,
                      "mfcc_seconds_per_clip": best, "clips": len(ys),
                      "passes": max(a.passes, 1)}))


if __name__ == "__main__":
    main()
