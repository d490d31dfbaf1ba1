"""dlbench's built-in plugins, installed as ``dlbench_plugins``: ``speech`` (denoising) and
``cifar`` (augmentation and pretext transfer). Each registers through the public hooks by
entry point, exactly as a third party's plugin does; dlbench itself never imports them."""
