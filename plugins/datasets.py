"""The built-in datasets, registered through the plugin hook exactly like a third party's.

Loading code lives in ``dlbench.datasets``; this module only declares the names, and imports
nothing heavy (``dlbench list`` imports every plugin).
"""

from dlbench import Dataset, hookimpl


def load_speech(path, *, quick=False, seed=0):
    from dlbench.datasets.speech import load_speech as load

    return load(path, quick=quick, seed=seed)


def load_cifar10(path, *, quick=False, seed=0):
    from dlbench.datasets.cifar import load_cifar10 as load

    return load(path, quick=quick, seed=seed)


def speech_status():
    from dlbench.datasets.status import speech_status as status

    return status()


def cifar10_status():
    from dlbench.datasets.status import cifar10_status as status

    return status()


@hookimpl
def dlbench_datasets():
    return [
        Dataset(
            name="speech",
            kind="speech",
            summary="parallel noisy/clean speech, 16 kHz mono: --data course or VoiceBank-DEMAND"
            " layout, else synthesized espeak-ng speech with six noise types",
            load=load_speech,
            status=speech_status,
        ),
        Dataset(
            name="cifar10",
            kind="images",
            summary="CIFAR-10 python batches (uint8 32x32x3, 10 classes), read with a restricted"
            " unpickler",
            load=load_cifar10,
            status=cifar10_status,
        ),
    ]
