"""One seed for every source of randomness, so the same seed gives the same metrics on CPU."""

from __future__ import annotations

import os
import random


def seed_everything(seed: int, tensorflow: bool = True) -> None:
    """Seed python and numpy, and TensorFlow/Keras with op determinism when the run uses it.

    Op determinism makes TF pick deterministic kernels and fixed reduction orders; on CPU it
    costs little, and it is what makes "same seed, same final metrics" hold.
    """
    import numpy as np

    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    if tensorflow:
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
