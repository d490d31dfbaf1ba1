"""Speech denoising, a built-in dlbench plugin: the ``speech`` dataset (course and
VoiceBank-DEMAND recordings, or synthesized speech), the ``denoise_dense`` and
``denoise_conv1d`` experiments, and the ``dlbench denoise`` command.

It registers through the public hooks only, exactly as a third party's plugin does. This
module is imported by ``dlbench list``, so nothing here (or in what it imports) loads numpy,
TensorFlow or an audio library at import time.
"""

from dlbench import Dataset, hookimpl
from dlbench_plugins.speech import dataset
from dlbench_plugins.speech.command import denoise_command
from dlbench_plugins.speech.experiments import EXPERIMENTS


@hookimpl
def dlbench_experiments():
    return EXPERIMENTS


@hookimpl
def dlbench_datasets():
    return [
        Dataset(
            name="speech",
            kind="speech",
            summary="parallel noisy/clean speech, 16 kHz mono: --data course or VoiceBank-DEMAND"
            " layout, else synthesized espeak-ng speech with six noise types",
            load=dataset.load,
            status=dataset.status,
        )
    ]


@hookimpl
def dlbench_commands():
    return [denoise_command]
