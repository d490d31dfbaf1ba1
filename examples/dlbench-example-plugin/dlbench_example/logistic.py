"""Logistic regression on two Gaussian blobs: data, model, train, evaluate, plot.

Small enough to train in well under a second, real enough to show every part of a plugin:
typed params (``ctx.params``), seeded randomness (``ctx.seed``), per-epoch metrics, a final
metric and a figure artifact.
"""


def make_blobs(samples, separation, seed):
    """Two 2-D Gaussian classes whose means lie ``separation`` apart; 80/20 train/validation."""
    import numpy as np

    rng = np.random.default_rng(seed)
    half = separation / 2
    x = np.concatenate([rng.normal((-half, 0.0), 1.0, (samples, 2)),
                        rng.normal((half, 0.0), 1.0, (samples, 2))])
    y = np.concatenate([np.zeros(samples), np.ones(samples)])
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    cut = int(0.8 * len(y))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def predict(weights, bias, x):
    import numpy as np

    return 1.0 / (1.0 + np.exp(-(x @ weights + bias)))


def cross_entropy(p, y):
    import numpy as np

    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def accuracy(p, y):
    import numpy as np

    return float(np.mean((p > 0.5) == (y == 1)))


def plot_boundary(weights, bias, x, y):
    """The validation points and the learned decision line w.x + b = 0."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=8)
    xs = np.linspace(x[:, 0].min(), x[:, 0].max(), 2)
    if abs(weights[1]) > 1e-9:
        ax.plot(xs, -(weights[0] * xs + bias) / weights[1], "k-", label="decision boundary")
        ax.legend(loc="upper right")
    ax.set_ylim(x[:, 1].min() - 0.5, x[:, 1].max() + 0.5)
    ax.set_title("logistic regression, validation set")
    return fig


def run(ctx):
    import numpy as np

    p = ctx.params
    (x_train, y_train), (x_val, y_val) = make_blobs(p["samples"], p["separation"], ctx.seed)
    ctx.log(f"{len(y_train)} training points, {len(y_val)} validation points")

    weights, bias = np.zeros(2), 0.0
    for epoch in range(1, p["epochs"] + 1):
        prob = predict(weights, bias, x_train)
        error = prob - y_train
        weights -= p["learning_rate"] * (x_train.T @ error / len(y_train) + p["l2"] * weights)
        bias -= p["learning_rate"] * float(np.mean(error))
        val_prob = predict(weights, bias, x_val)
        ctx.log_metrics({"loss": cross_entropy(prob, y_train),
                         "val_loss": cross_entropy(val_prob, y_val),
                         "val_accuracy": accuracy(val_prob, y_val)}, step=epoch)

    final = accuracy(predict(weights, bias, x_val), y_val)
    ctx.log_metric("accuracy", final)
    ctx.log_dict({"weights": weights.tolist(), "bias": bias}, "model/weights.json")
    ctx.log_figure(plot_boundary(weights, bias, x_val, y_val), "plots/boundary.png")
    ctx.log(f"validation accuracy {final:.3f}")
