"""The seed's small CIFAR-10 CNN, shared by ``cifar_aug`` and ``pretext_transfer``.

Conv2D(10, 5x5, relu) -> MaxPool(2) -> Conv2D(10, 5x5, relu) -> MaxPool(2) -> Flatten
-> Dense(20, relu) -> Dense(classes, softmax), on images scaled to [-1, 1].

The layers carry fixed names so that a pretext model and a downstream model can hand weights
to each other by name (``conv1``, ``conv2``, ``fc``), whatever the head.
"""

from __future__ import annotations

CONV_LAYERS = ("conv1", "conv2")
"""The convolutional feature extractor: what ``pretext_transfer`` transfers by default."""

BODY_LAYERS = CONV_LAYERS + ("fc",)
"""Every trainable layer below the classifier: what the seed transferred."""


def scale(images):
    """uint8 pixels (0..255) -> float32 in [-1, 1]; numpy arrays and tensors alike."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 127.5 - 1.0


def small_cnn(classes: int, name: str = "small_cnn"):
    """The seed's CNN with a ``classes``-way softmax head, for 32x32x3 inputs in [-1, 1]."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(10, 5, activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(10, 5, activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(20, activation="relu", name="fc"),
            layers.Dense(classes, activation="softmax", name="classifier"),
        ],
        name=name,
    )


def copy_layers(source, target, names) -> None:
    """Copy the weights of the layers called ``names`` from ``source`` into ``target``."""
    for name in names:
        target.get_layer(name).set_weights(source.get_layer(name).get_weights())


def classifier(net, name: str = "cifar10_classifier"):
    """``net`` (images in [-1, 1]) behind its input scaling: pixels 0..255 (uint8, or float
    holding the same values) -> class probabilities. What a run logs as its model, so that
    whoever loads it feeds images as CIFAR-10 stores them."""
    import keras
    from keras import layers

    return keras.Sequential(
        [keras.Input((32, 32, 3)), layers.Rescaling(1 / 127.5, offset=-1.0, name="pixels"), net],
        name=name,
    )
