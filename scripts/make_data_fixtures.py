#!/usr/bin/env python3
"""Golden values for the data-layer tests (tests/data_*.rs), computed independently of the Rust
code: MSD fields and segment statistics with h5py + numpy, counts and filter results of the
bundled triplet/HetRec/profile files with plain Python.

Run from the repository root:
    python3 -m venv .venv && .venv/bin/pip install h5py numpy
    .venv/bin/python scripts/make_data_fixtures.py
Writes tests/fixtures/data_reference.json (the Rust tests only read that file).
"""
import glob
import json
import os

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")


def s(x):
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)


def msd_file(path):
    with h5py.File(path, "r") as f:
        meta = f["metadata/songs"][0]
        ana = f["analysis/songs"][0]
        mb = f["musicbrainz/songs"][0]
        timbre = f["analysis/segments_timbre"][:]
        pitches = f["analysis/segments_pitches"][:]
        lmax = f["analysis/segments_loudness_max"][:]
        terms = [s(t) for t in f["metadata/artist_terms"][:]]
        weights = [float(w) for w in f["metadata/artist_terms_weight"][:]]
        order = sorted(range(len(terms)), key=lambda i: -weights[i])  # stable
        mbtags = [s(t) for t in f["musicbrainz/artist_mbtags"][:]]
        return {
            "file": os.path.relpath(path, ROOT),
            "song_id": s(meta["song_id"]),
            "track_id": s(ana["track_id"]),
            "title": s(meta["title"]),
            "artist_name": s(meta["artist_name"]),
            "artist_id": s(meta["artist_id"]),
            "artist_location": s(meta["artist_location"]),
            "release": s(meta["release"]),
            "year": int(mb["year"]),
            "duration": float(ana["duration"]),
            "tempo": float(ana["tempo"]),
            "loudness": float(ana["loudness"]),
            "key": int(ana["key"]),
            "mode": int(ana["mode"]),
            "terms": [terms[i] for i in order],
            "term_weights": [weights[i] for i in order],
            "mbtags": mbtags,
            "segments": int(timbre.shape[0]),
            "timbre_first_row": [float(v) for v in timbre[0]],
            "timbre_mean": [float(v) for v in timbre.mean(0)],
            "timbre_std": [float(v) for v in timbre.std(0)],
            "pitch_mean": [float(v) for v in pitches.mean(0)],
            "pitch_std": [float(v) for v in pitches.std(0)],
            "loudness_max_mean": float(lmax.mean()),
            "loudness_max_std": float(lmax.std()),
        }


def read_triplets(path, header=False):
    rows = []
    with open(path, "rb") as fh:
        for i, line in enumerate(fh.read().decode("utf-8").splitlines()):
            if header and i == 0:
                continue
            if not line.strip():
                continue
            u, t, c = line.split("\t")
            rows.append((u, t, int(c)))
    return rows


def counts(rows):
    return {
        "users": len({r[0] for r in rows}),
        "songs": len({r[1] for r in rows}),
        "interactions": len(rows),
        "plays": sum(r[2] for r in rows),
    }


def filter_steps(rows, min_l, min_s):
    """Same rules as src/data/prepare/filter.rs, written independently."""
    min_l, min_s = max(min_l, 1), max(min_s, 1)
    keep = list(rows)
    steps = []

    def tot(rs):
        return [len({r[0] for r in rs}), len({r[1] for r in rs}), len(rs)]

    p = 1
    while True:
        before = tot(keep)
        n = {}
        for r in keep:
            n[r[0]] = n.get(r[0], 0) + 1
        keep = [r for r in keep if n[r[0]] >= min_l]
        a = tot(keep)
        da = a != before
        if p == 1 or da:
            steps.append(a)
        m = {}
        for r in keep:
            m[r[1]] = m.get(r[1], 0) + 1
        keep = [r for r in keep if m[r[1]] >= min_s]
        b = tot(keep)
        db = b != a
        if p == 1 or db:
            steps.append(b)
        n = {}
        for r in keep:
            n[r[0]] = n.get(r[0], 0) + 1
        if all(v >= min_l for v in n.values()) or not (da or db):
            break
        p += 1
    return {"min_listens": min_l, "min_song_users": min_s, "steps": steps}


def age_bucket(age):
    if age is None or not (13 <= age <= 90):
        return "unknown"
    for hi, name in [(17, "<18"), (24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54")]:
        if age <= hi:
            return name
    return "55+"


def profiles(path):
    buckets, ages, n = {}, 0, 0
    raw_ages = []
    with open(path, encoding="utf-8") as fh:
        for line in fh.read().splitlines():
            if not line.strip():
                continue
            f = line.split("\t")
            n += 1
            age = int(f[2]) if f[2].strip() else None
            if age is not None:
                ages += 1
                raw_ages.append(age)
            b = age_bucket(age)
            buckets[b] = buckets.get(b, 0) + 1
    return {
        "rows": n,
        "with_age": ages,
        "implausible": sorted(a for a in raw_ages if not (13 <= a <= 90)),
        "buckets": buckets,
    }


def main():
    out = {"msd": [msd_file(p) for p in sorted(glob.glob(os.path.join(DATA, "msd", "*.h5")))]}
    dev = read_triplets(os.path.join(DATA, "taste", "triplets_dev.txt"))
    small = read_triplets(os.path.join(DATA, "taste", "triplets_small.txt"))
    het = read_triplets(os.path.join(DATA, "hetrec", "user_artists.dat"), header=True)
    out["triplets_dev"] = counts(dev)
    out["triplets_small"] = counts(small)
    out["hetrec"] = counts(het)
    out["filters"] = {
        "triplets_dev": [filter_steps(dev, 2, 2), filter_steps(dev, 5, 1), filter_steps(dev, 1, 3)],
        "triplets_small": [filter_steps(small, 2, 2)],
        "hetrec": [filter_steps(het, 2, 2), filter_steps(het, 20, 5)],
    }
    out["profiles"] = profiles(os.path.join(DATA, "portrait", "lastfm360k_profile_sample.tsv"))
    path = os.path.join(ROOT, "tests", "fixtures", "data_reference.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
