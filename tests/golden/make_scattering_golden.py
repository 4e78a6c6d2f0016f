#!/usr/bin/env python3
"""Golden fixtures for the wavelet scattering transform, computed by Kymatio itself.

Reference: Kymatio 0.3.0 `kymatio.numpy.Scattering1D` (numpy backend, float64) on short excerpts
of the bundled real clips (22,050 Hz, 16-bit mono, read as int16 / 32768).

Setup (once, in the worktree; `.venv*` is git-ignored). Kymatio 0.3.0 predates numpy 2 and
imports `scipy.special.sph_harm`, removed in SciPy 1.17, hence the pins:

    python3 -m venv .venv-ref
    .venv-ref/bin/pip install kymatio==0.3.0 numpy==1.26.4 scipy==1.11.4 soundfile
    .venv-ref/bin/python tests/golden/make_scattering_golden.py

Writes, per configuration NAME, into tests/golden/scattering/:
    NAME.json  configuration, versions, source files and offsets, shapes, Kymatio's meta()
    NAME.i16   the input excerpts, int16 little-endian, [clips, n]
    NAME.f32   Kymatio's output, float32 little-endian, [clips, paths, frames]
The Rust tests (tests/scattering.rs) re-read the excerpts from the WAV files and check that they
match NAME.i16, so the fixture cannot drift from the bundled data unnoticed.
"""
import hashlib
import json
import math
import os
import sys

import numpy as np
import scipy
import soundfile as sf
import kymatio
from kymatio.numpy import Scattering1D

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "scattering")

# (name, J, Q, n, [(wav, offset in samples)])
CONFIGS = [
    # Default configuration (J = 8, Q = 8, order-2 Q = 1) on 2^15-sample excerpts of both clips.
    ("default_j8_q8", 8, 8, 1 << 15, [
        ("data/audio/singularity_awakening_30s.wav", 5 * 22050),
        ("data/audio/gtzan_country.00000.wav", 10 * 22050),
    ]),
    # Another J and Q, and a length that is not a power of two (exercises the padding).
    ("small_j5_q4", 5, 4, 10000, [
        ("data/audio/gtzan_country.00000.wav", 3 * 22050),
    ]),
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def nan_to_none(v):
    return None if isinstance(v, float) and math.isnan(v) else v


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, J, Q, n, sources in CONFIGS:
        clips = []
        for rel, offset in sources:
            data, sr = sf.read(os.path.join(ROOT, rel), dtype="int16", always_2d=True)
            if sr != 22050 or data.shape[1] != 1:
                sys.exit(f"{rel}: expected 22,050 Hz mono, got {sr} Hz, {data.shape[1]} channels")
            clips.append(data[offset:offset + n, 0].copy())
        x_i16 = np.stack(clips)
        x = x_i16.astype(np.float64) / 32768.0
        S = Scattering1D(J=J, shape=n, Q=Q)
        y = S(x)
        meta = S.meta()
        order = [int(o) for o in meta["order"]]
        xi = [[nan_to_none(float(v)) for v in row] for row in meta["xi"]]
        j = [[None if math.isnan(v) else int(v) for v in row] for row in meta["j"]]
        manifest = {
            "generator": "tests/golden/make_scattering_golden.py",
            "reference": "kymatio.numpy.Scattering1D (numpy backend, float64 output)",
            "versions": {
                "kymatio": kymatio.__version__,
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "soundfile": sf.__version__,
                "python": sys.version.split()[0],
            },
            "J": J,
            "Q": Q,
            "Q_order2": S.Q[1],
            "T": S.T,
            "n_samples": n,
            "n_padded": int(S._N_padded),
            "pad_left": int(S.pad_left),
            "pad_right": int(S.pad_right),
            "clips": [
                {"file": rel, "offset": off, "sha256": sha256(os.path.join(ROOT, rel))}
                for rel, off in sources
            ],
            "input_scale": "int16 / 32768",
            "shape": list(y.shape),
            "meta": {"order": order, "xi": xi, "j": j},
        }
        # Readable header, meta arrays on single lines (they are long).
        head = json.dumps({k: v for k, v in manifest.items() if k != "meta"}, indent=1)
        meta_text = json.dumps(manifest["meta"], separators=(",", ":"))
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            f.write(head[:-2] + ',\n "meta": ' + meta_text + "\n}\n")
        x_i16.astype("<i2").tofile(os.path.join(OUT, name + ".i16"))
        y.astype("<f4").tofile(os.path.join(OUT, name + ".f32"))
        print(f"{name}: input {x_i16.shape}, output {y.shape}, padded to {S._N_padded}")


if __name__ == "__main__":
    main()
