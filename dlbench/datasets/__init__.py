"""Shared datasets: found, validated and cached here, handed to experiments by name.

- ``speech.load_speech``: parallel noisy/clean speech (course layout, VoiceBank-DEMAND, or the
  synthesized default from ``synth``), float32 mono 16 kHz; validation in ``audio_io``.
- ``cifar.load_cifar10``: CIFAR-10 from python pickles through a restricted unpickler, uint8.
- ``cache``: the data root (``$DLBENCH_DATA``) and a content-keyed, atomic array cache.
- ``locate``: where the data is, without reading it (for ``dlbench datasets``).

Submodules import numpy and audio libraries; this package itself imports nothing heavy, so
the plugin that registers the datasets stays cheap to import.
"""
