"""First vs second run of the dataset loaders, each run a fresh process on an empty data root.

What a second ``dlbench run`` saves: course STFT features (load + librosa STFT of every clip),
CIFAR-10 decoding (restricted unpickling of every batch), the synthesized default (espeak-ng
synthesis + noise mixing). Also the CIFAR loader's peak traced memory, cold and warm, against
the uint8 size of what it returns.

    python bench/bench_cache.py [--data ../shared/data]

Times are wall-clock seconds inside the child process, imports of the loaders included
(librosa is imported only on a cache miss: that is part of what the cache saves).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STAGES = {
    "course features": """
from dlbench_plugins.speech.dataset import load as load_speech
from dlbench_plugins.speech.features import spectrograms
data = load_speech(DATA / "course")
stfts = spectrograms(data)
detail = f"{sum(v.shape[0] for v in stfts.values())} frames"
""",
    "cifar10 decode": """
import tracemalloc
from dlbench_plugins.cifar.dataset import load_cifar10
tracemalloc.start()
data = load_cifar10(DATA / "cifar-10-batches-py")
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
detail = (f"{len(data.y_train)}+{len(data.y_test)} images, uint8 {data.nbytes / 1e6:.1f} MB,"
          f" peak traced {peak / 1e6:.1f} MB")
""",
    "synth default (full)": """
from dlbench_plugins.speech.dataset import load as load_speech
data = load_speech(None, seed=0)
detail = f"{data.seconds('train'):.0f} s train + {data.seconds('evaluation'):.0f} s scored"
""",
    "synth default (quick)": """
from dlbench_plugins.speech.dataset import load as load_speech
data = load_speech(None, quick=True, seed=0)
detail = f"{data.seconds('train'):.1f} s train + {data.seconds('evaluation'):.1f} s scored"
""",
}

CHILD = """
import json, time
from pathlib import Path
DATA = Path({data!r})
start = time.perf_counter()
{body}
print(json.dumps({{"seconds": time.perf_counter() - start, "detail": detail}}))
"""


def run_stage(body: str, data: Path, root: Path) -> dict:
    env = {**os.environ, "DLBENCH_DATA": str(root), "DLBENCH_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD.format(data=str(data), body=body)],
                          capture_output=True, text=True, env=env, cwd=REPO, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    args = parser.parse_args()
    print(f"data: {args.data}; each stage: a fresh process on an empty data root, then again;"
          f" best of {args.repeat}")
    print(f"{'stage':24} {'first s':>8} {'second s':>9} {'speed-up':>8}  detail (first | second)")
    for name, body in STAGES.items():
        needs = {"course features": "course", "cifar10 decode": "cifar-10-batches-py"}.get(name)
        if needs and not (args.data / needs).is_dir():
            print(f"{name:24} skipped: {args.data / needs} not found")
            continue
        firsts, seconds = [], []
        for _ in range(args.repeat):  # best of N: the machine may be shared
            with tempfile.TemporaryDirectory(prefix="dlbench-bench-") as root:
                firsts.append(run_stage(body, args.data, Path(root)))
                seconds.append(run_stage(body, args.data, Path(root)))
        first = min(firsts, key=lambda r: r["seconds"])
        second = min(seconds, key=lambda r: r["seconds"])
        ratio = first["seconds"] / max(second["seconds"], 1e-9)
        print(f"{name:24} {first['seconds']:8.3f} {second['seconds']:9.3f} {ratio:7.1f}x"
              f"  {first['detail']} | {second['detail']}")


if __name__ == "__main__":
    main()
