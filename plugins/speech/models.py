"""The seed's two denoising networks, as Keras models from features to a gain (or magnitude).

``denoise_dense``: 513 -> Dense(256, ELU) -> Dense(513, ReLU). ``denoise_conv1d``: the
*frequency* axis as the 1-D sequence (context frames are its channels): Conv1D(128) ->
MaxPool -> Conv1D(256) -> MaxPool -> Flatten -> Dense(513, ReLU). Both He-normal.
"""

from __future__ import annotations

OUTPUT_INITS = ("he_normal", "half_gain")


def dropout(params):
    """A Dropout layer before the output Dense when ``dropout`` is set (none at 0)."""
    from keras import layers

    rate = params.get("dropout", 0.0)
    return [layers.Dropout(rate)] if rate > 0 else []


def output_layers(bins, params):
    """Dense(bins) with its ReLU; in mask mode the ReLU stops at ``max_gain`` (0: no ceiling).

    A gain above 1 amplifies a noisy bin, which a clean signal under additive noise rarely
    needs, so a mask may be capped (``max_gain``). He-normal weights start about half of the
    gains below 0, where the ReLU passes no gradient; ``output_init=half_gain`` starts every
    gain at half the ceiling instead, inside the range where it learns (with it conv1d trains
    at a rate that left it far behind otherwise: docs/RESULTS.md).
    """
    import keras
    from keras import layers

    ceiling = params.get("max_gain", 0.0) if params.get("output") == "mask" else 0.0
    if params.get("output_init", "he_normal") == "half_gain" and params.get("output") == "mask":
        start = {"kernel_initializer": "zeros",
                 "bias_initializer": keras.initializers.Constant((ceiling or 1.0) / 2)}
    else:
        start = {"kernel_initializer": "he_normal"}
    if not ceiling:
        return [layers.Dense(bins, activation="relu", **start)]
    return [
        layers.Dense(bins, **start),
        layers.ReLU(max_value=ceiling, name="gain"),
    ]


def build_dense(input_shape, params):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Flatten(),
            layers.Dense(256, activation="elu", kernel_initializer="he_normal"),
            *dropout(params),
            *output_layers(input_shape[0], params),
        ],
        name="denoise_dense",
    )


def build_conv1d(input_shape, params):
    import keras
    from keras import layers

    size, pool = params["kernel_size"], params["pool_size"]
    return keras.Sequential(
        [
            keras.Input(input_shape),  # (513 frequency bins, 2*context+1 frames as channels)
            layers.Conv1D(128, size, padding="same", activation="elu", kernel_initializer="he_normal"),
            layers.MaxPooling1D(pool),
            layers.Conv1D(256, size, padding="same", activation="elu", kernel_initializer="he_normal"),
            layers.MaxPooling1D(pool),
            layers.Flatten(),
            *dropout(params),  # the Flatten -> Dense(513) step holds nearly all the weights
            *output_layers(input_shape[0], params),
        ],
        name="denoise_conv1d",
    )
