#!/usr/bin/env python3
"""Generates tests/golden/golden.h5: reference features on short excerpts of the bundled real
clips, computed by the reference libraries themselves.

- decode: soundfile (libsndfile) reads the 16-bit WAVs as x / 32768 (float32), as librosa does.
- mel / MFCC / deltas: librosa 0.11 (`melspectrogram` defaults: n_fft 2048, hop 512, periodic
  Hann, centred frames with zero padding, power 2, 128 Slaney mel bands, Slaney norm;
  `power_to_db(ref=1, amin=1e-10, top_db=80)`, orthonormal DCT-II, 20 coefficients;
  `feature.delta(width=9, order=1|2)`).
- HFC and HPCP: Essentia (`HFC(type='Masri')`, `SpectralPeaks` + `HPCP` with Essentia's
  defaults, minFrequency 40 / maxFrequency 5000) on the magnitude of librosa's STFT frames,
  so the only thing the comparison tests is the HFC/HPCP algorithm itself. HFC is also
  computed with numpy (sum_k f_k |X_k|^2) and both are stored.

Usage (from the repository root, in a virtualenv):
    python3 -m venv .venv && .venv/bin/pip install "librosa==0.11.*" essentia h5py soundfile
    .venv/bin/python tests/golden/make_golden.py
Library versions are recorded as attributes of the file.
"""
import os
import sys

import h5py
import numpy as np
import scipy
import soundfile as sf
import librosa

try:
    import essentia
    import essentia.standard as es
except ImportError:  # the HPCP/HFC fixtures need Essentia
    sys.exit("essentia is required: pip install essentia")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "golden.h5")
SR = 22050
N_FFT = 2048
HOP = 512
SECONDS = 2.0  # excerpt length: keeps the fixture small (< 1 MB in total)
CLIPS = ["singularity_awakening_30s.wav", "gtzan_country.00000.wav"]
OGG = "singularity_awakening.ogg"
OGG_SECONDS = 0.5


def features(y):
    S = librosa.stft(y, n_fft=N_FFT, hop_length=HOP, window="hann", center=True, pad_mode="constant")
    power = np.abs(S) ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=128, power=2.0)
    # The same call chain as librosa.feature.mfcc(y=...), with its defaults spelled out.
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0), n_mfcc=20, dct_type=2, norm="ortho")
    d1 = librosa.feature.delta(mfcc, width=9, order=1)
    d2 = librosa.feature.delta(mfcc, width=9, order=2)
    mag = np.abs(S).astype(np.float32)
    freqs = librosa.fft_frequencies(sr=SR, n_fft=N_FFT)
    hfc_np = (freqs[:, None] * power.astype(np.float64)).sum(axis=0)
    hfc_alg = es.HFC(type="Masri", sampleRate=SR)
    peaks = es.SpectralPeaks(sampleRate=SR, minFrequency=40, maxFrequency=5000, maxPeaks=100,
                             magnitudeThreshold=0, orderBy="frequency")
    hpcp_alg = es.HPCP(size=12, referenceFrequency=440, sampleRate=SR, minFrequency=40,
                       maxFrequency=5000, weightType="squaredCosine", windowSize=1.0,
                       normalized="unitMax")
    hfc_es, hpcp = [], []
    for t in range(mag.shape[1]):
        frame = np.ascontiguousarray(mag[:, t])
        hfc_es.append(hfc_alg(frame))
        f, m = peaks(frame)
        hpcp.append(hpcp_alg(f, m))
    return {
        "mel": mel.astype(np.float32),
        "mfcc": mfcc.astype(np.float32),
        "mfcc_delta": d1.astype(np.float32),
        "mfcc_delta2": d2.astype(np.float32),
        "hfc": hfc_np.astype(np.float32),
        "hfc_essentia": np.array(hfc_es, dtype=np.float32),
        "hpcp": np.array(hpcp, dtype=np.float32).T.copy(),
    }


def main():
    with h5py.File(OUT, "w") as f:
        f.attrs["generator"] = "tests/golden/make_golden.py"
        f.attrs["librosa"] = librosa.__version__
        f.attrs["essentia"] = essentia.__version__
        f.attrs["numpy"] = np.__version__
        f.attrs["scipy"] = scipy.__version__
        f.attrs["soundfile"] = sf.__version__
        f.attrs["libsndfile"] = sf.__libsndfile_version__
        f.attrs["seconds"] = SECONDS
        for name in CLIPS:
            path = os.path.join(ROOT, "data", "audio", name)
            y, sr = sf.read(path, dtype="float32")
            assert sr == SR and y.ndim == 1, (path, sr, y.shape)
            y = y[: int(SECONDS * SR)]
            # librosa.load gives the same samples (no resampling at 22,050 Hz).
            y2, _ = librosa.load(path, sr=SR, mono=True, duration=SECONDS)
            assert np.array_equal(y, y2)
            g = f.create_group(os.path.splitext(name)[0])
            g.attrs["source_file"] = "data/audio/" + name
            g.create_dataset("pcm", data=y)
            for k, v in features(y).items():
                g.create_dataset(k, data=v)
        # Vorbis decode check: the first OGG_SECONDS of the 48 kHz stereo file, down-mixed as
        # 0.5 * (L + R) (libsndfile's libvorbis decoder).
        path = os.path.join(ROOT, "data", "audio", OGG)
        y, sr = sf.read(path, dtype="float32", frames=int(OGG_SECONDS * 48000))
        g = f.create_group("ogg_decode")
        g.attrs["source_file"] = "data/audio/" + OGG
        g.attrs["sample_rate"] = sr
        g.create_dataset("mono", data=(0.5 * (y[:, 0].astype(np.float64) + y[:, 1])).astype(np.float32))
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
