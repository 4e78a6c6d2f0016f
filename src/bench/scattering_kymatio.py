"""Times Kymatio 0.3 `Scattering1D` (numpy backend) for `ainrnn bench scattering`.

argv: input.f32 (raw little-endian float32 [n]), J, Q, min_seconds, output.f32
Prints one JSON line: versions, build and per-transform seconds, repetitions.
Writes the coefficients (float32 [paths, frames]) to output.f32 so the bench can report the
agreement of its own result with Kymatio's on the same clip.
"""
import json
import sys
import time

import numpy as np

try:
    import kymatio
    from kymatio.numpy import Scattering1D
except Exception as e:  # reported by the bench, not a crash
    print(json.dumps({"error": f"cannot import kymatio: {e!r}"}))
    sys.exit(0)

path, J, Q, min_seconds, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
x = np.fromfile(path, dtype="<f4")
t0 = time.perf_counter()
S = Scattering1D(J=J, shape=x.shape[-1], Q=Q)
build = time.perf_counter() - t0
y = S(x)  # warm-up
reps, total = 0, 0.0
while reps < 2 or total < min_seconds:
    t0 = time.perf_counter()
    y = S(x)
    total += time.perf_counter() - t0
    reps += 1
y.astype("<f4").tofile(out)
print(json.dumps({
    "kymatio": kymatio.__version__,
    "numpy": np.__version__,
    "python": sys.version.split()[0],
    "build_seconds": build,
    "seconds": total / reps,
    "reps": reps,
    "shape": list(y.shape),
}))
