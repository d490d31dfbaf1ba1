"""Figures of a denoising run: spectrograms of one clip and the training curves."""

from __future__ import annotations


def plot_spectrograms(name, noisy, denoised, clean, settings):
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True, constrained_layout=True)
    seconds = len(noisy) * settings.hop_length / settings.sample_rate
    extent = (0, seconds, 0, settings.sample_rate / 2000)
    floor = 20 * np.log10(max(float(np.max(clean)), 1e-8)) - 80
    for ax, title, magnitude in zip(axes, ("noisy", "denoised", "clean"), (noisy, denoised, clean)):
        db = np.maximum(20 * np.log10(np.maximum(magnitude.T, 1e-8)), floor)
        image = ax.imshow(db, origin="lower", aspect="auto", extent=extent, cmap="magma")
        ax.set(title=f"{name}: {title}", ylabel="kHz")
    axes[-1].set_xlabel("seconds")
    fig.colorbar(image, ax=axes, label="dB")
    return fig


def plot_loss(history, output):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    epochs = range(1, len(history["loss"]) + 1)
    ax.semilogy(epochs, history["loss"], label="loss")
    if "val_loss" in history:
        ax.semilogy(epochs, history["val_loss"], label="val_loss")
    quantity = "linear magnitude / level" if output == "mask" else "compressed magnitude"
    ax.set(xlabel="epoch", ylabel=f"MSE ({quantity})", title="training")
    ax.legend()
    return fig
