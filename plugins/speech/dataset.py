"""The ``speech`` dataset: recorded pairs from ``--data``, else the synthesized default.

``load`` is what ``ctx.data("speech")`` calls; ``status`` is what ``dlbench datasets`` shows,
from the file system alone (and libespeak-ng's version, milliseconds): no decoding.
"""

from __future__ import annotations

from pathlib import Path


def load(path: Path | None, *, quick: bool = False, seed: int = 0):
    """The speech dataset at ``path`` (a folder), or the synthesized default when None."""
    if path is None:
        from dlbench_plugins.speech.synth import load_synth

        return load_synth(quick=quick, seed=seed)
    from dlbench_plugins.speech.recorded import load_recorded

    return load_recorded(Path(path), quick=quick)


def status() -> dict:
    from dlbench.cache import cache_dir, entry_path
    from dlbench_plugins.speech import synth

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
