"""Per-group learning rates for Keras 3, which dropped ``MultiOptimizer``.

Fine-tuning a pretrained body gently (1e-5) while a fresh head learns fast (1e-3) needs one
optimizer per group of layers. :class:`GroupedLR` wraps any built model and overrides only the
training step: one tape, one gradient, and each group's slice of the gradient goes to that
group's own optimizer (so Adam's moment estimates stay per group too). Evaluation, prediction,
callbacks and ``fit`` itself are plain Keras. TensorFlow backend.
"""

from __future__ import annotations


def _grouped_lr_class():
    import keras
    import tensorflow as tf

    class GroupedLR(keras.Model):
        """``net`` trained with ``groups = [(layers, optimizer), ...]``; each trainable layer of
        ``net`` must belong to exactly one group. Compile with ``loss`` and ``metrics`` only."""

        def __init__(self, net, groups, **kwargs):
            super().__init__(**kwargs)
            self.net = net
            self.groups = [(list(layers), optimizer) for layers, optimizer in groups]
            grouped = [w for layers, _ in self.groups for layer in layers for w in layer.trainable_weights]
            ids = [id(w) for w in grouped]
            if len(set(ids)) != len(ids):
                raise ValueError("a layer belongs to more than one learning-rate group")
            missing = [w.path for w in net.trainable_weights if id(w) not in set(ids)]
            if missing:
                raise ValueError(f"trainable weights in no learning-rate group: {missing}")
            for layers, optimizer in self.groups:
                optimizer.build([w for layer in layers for w in layer.trainable_weights])

        def compile(self, **kwargs):
            """Keras' compile with the optimizer taken from the groups (the last group's
            stands in where Keras asks for ``model.optimizer``, e.g. its iteration count)."""
            if "optimizer" in kwargs:
                raise TypeError("GroupedLR takes its optimizers from its groups; compile with loss and metrics")
            super().compile(optimizer=self.groups[-1][1], **kwargs)

        def call(self, inputs, training=False):
            return self.net(inputs, training=training)

        def train_step(self, data):
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            variables = [[w for layer in layers for w in layer.trainable_weights] for layers, _ in self.groups]
            gradients = tape.gradient(loss, [w for ws in variables for w in ws])
            start = 0
            for weights, (_, optimizer) in zip(variables, self.groups):
                optimizer.apply_gradients(zip(gradients[start : start + len(weights)], weights))
                start += len(weights)
            self._loss_tracker.update_state(loss, sample_weight=tf.shape(y_pred)[0])
            return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    return GroupedLR


def grouped_lr(net, groups):
    """Wrap ``net`` so that each ``(layers, optimizer)`` group trains with its own optimizer.

    >>> model = grouped_lr(net, [(body, keras.optimizers.Adam(1e-5)),
    ...                          (head, keras.optimizers.Adam(1e-3))])
    >>> model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    """
    return _grouped_lr_class()(net, groups)
