"""What ``dlbench datasets`` reports for the built-in datasets: source, cache, ready or not.

Reads only the file system (and loads libespeak-ng to learn its version, milliseconds): no
decoding, no download, no TensorFlow.
"""

from __future__ import annotations

from dlbench.datasets import locate
from dlbench.datasets.cache import cache_dir, data_root, entry_path


def speech_status() -> dict:
    from dlbench.datasets import synth

    entry = None
    try:
        key = {"version": synth.SYNTH_VERSION, "seed": 0, "quick": False,
               "espeak": synth.espeak_version(), "rate": synth.SAMPLE_RATE}
        entry = entry_path("synth", key)
        ready, detail = True, ("synthesized default cached (seed 0)" if entry.is_file()
                               else "synthesized default is generated on first use (~2 s)")
    except Exception as exc:  # espeak-ng missing: only --data works
        ready, detail = False, f"espeak-ng unavailable ({exc}); pass --data"
    return {
        "source": "--data PATH (course or VoiceBank-DEMAND layout), else synthesized espeak-ng speech",
        "cache": str(cache_dir("synth")),
        "ready": ready,
        "detail": detail,
    }


def cifar10_status() -> dict:
    found = locate.find_cifar(None)
    if found is not None:
        ready, source, detail = True, str(found), "found"
    else:
        looked = "; ".join(str(p) for p in locate.cifar_candidates(None))
        ready, source = False, "download from www.cs.toronto.edu on first use (or --data PATH)"
        detail = f"not found locally (looked in {looked})"
    return {"source": source, "cache": str(cache_dir("cifar10")), "ready": ready,
            "detail": detail, "data_root": str(data_root())}
