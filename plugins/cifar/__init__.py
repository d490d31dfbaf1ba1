"""CIFAR-10, a built-in dlbench plugin: the ``cifar10`` dataset and the ``cifar_aug`` and
``pretext_transfer`` experiments, which share the seed's small CNN (``cnn.py``) and
per-group learning rates (``grouped_lr.py``).

It registers through the public hooks only, exactly as a third party's plugin does. This
module is imported by ``dlbench list``, so nothing it imports loads numpy or TensorFlow.
"""

from dlbench import Dataset, hookimpl
from dlbench_plugins.cifar import cifar_aug, location, pretext_transfer


def load_cifar10(path, *, quick=False, seed=0):
    from dlbench_plugins.cifar.dataset import load_cifar10 as load

    return load(path, quick=quick, seed=seed)


@hookimpl
def dlbench_experiments():
    return [cifar_aug.EXPERIMENT, pretext_transfer.EXPERIMENT]


@hookimpl
def dlbench_datasets():
    return [
        Dataset(
            name="cifar10",
            kind="images",
            summary="CIFAR-10 python batches (uint8 32x32x3, 10 classes), read with a restricted"
            " unpickler",
            load=load_cifar10,
            status=location.status,
        )
    ]
