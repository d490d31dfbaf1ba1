"""What a parallel speech dataset is, whoever made it: clips of noisy speech with their clean
references, split into what trains, what is scored and what is only listened to.

Recorded (``recorded.py``) and synthesized (``synth.py``) loaders both return
:class:`SpeechData`; neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SAMPLE_RATE = 16_000
"""Every clip is float32 mono at this rate, the rate the denoisers work at."""

HOP = 512
"""The STFT hop: held-out cuts and pair trimming are whole hops, so no frame straddles them."""


@dataclass
class SpeechClip:
    name: str
    noisy: Any  # float32 mono 16 kHz
    clean: Any | None  # same length as noisy, or None (no reference)


@dataclass
class SpeechData:
    train: list[SpeechClip]  # clean always set
    evaluation: list[SpeechClip]  # scored clips, clean always set
    listen: list[SpeechClip]  # recordings to denoise and save for listening
    sample_rate: int  # 16000
    layout: str  # "course" | "voicebank" | "synth"
    source: str
    digest: str
    notes: list[str] = field(default_factory=list)
    manifest: list[dict] = field(default_factory=list)  # per-clip provenance (synth: voice, noise, SNR)

    def seconds(self, part: str) -> float:
        """Total duration of ``train``, ``evaluation`` or ``listen`` in seconds."""
        return sum(len(c.noisy) for c in getattr(self, part)) / self.sample_rate

    def input_schema(self) -> dict:
        """Columns of a clip, for the run's dataset record: noisy speech in, clean speech out."""
        return {"features": {"noisy": ("float32", (-1,))}, "targets": {"clean": ("float32", (-1,))}}

    def evaluation_digest(self) -> str:
        """Content digest of the scored clips (noisy and clean), as they are handed out."""
        from dlbench.cache import array_digest

        return array_digest(signal for clip in self.evaluation for signal in (clip.noisy, clip.clean))

    def describe(self) -> dict:
        """A JSON-ready summary to log with the run."""
        return {
            "layout": self.layout,
            "source": self.source,
            "digest": self.digest,
            "sample_rate": self.sample_rate,
            "train_clips": len(self.train),
            "train_s": round(self.seconds("train"), 2),
            "evaluation_clips": len(self.evaluation),
            "evaluation_s": round(self.seconds("evaluation"), 2),
            "listen_clips": len(self.listen),
            "notes": list(self.notes),
        }
