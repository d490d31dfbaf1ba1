"""Starting TensorFlow without its C++ start-up chatter.

TensorFlow's native libraries log before ``TF_CPP_MIN_LOG_LEVEL`` is read ("All log messages
before absl::InitializeLog() ...", oneDNN, CUDA probing): the variable cannot silence them.
:func:`import_tensorflow` imports TensorFlow with the process's stderr (file descriptor 2)
captured and passes on every line but those, so a real error still shows. It filters only
when the quiet level is asked for (``TF_CPP_MIN_LOG_LEVEL`` >= 2: the CLI sets 3 unless
``--debug``).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

START_UP_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] )"
)
"""The absl banner, and the info/warning lines native code logs in the glog format."""


def quiet_requested() -> bool:
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip() in ("2", "3")


@contextlib.contextmanager
def native_stderr_filtered(noise=START_UP_NOISE):
    """Capture what is written to file descriptor 2 meanwhile; replay all but ``noise``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True)
                    if not noise.match(line)]
            if kept:
                sys.stderr.write(b"".join(kept).decode(errors="replace"))
                sys.stderr.flush()


def import_tensorflow():
    """``import tensorflow`` (and Keras), quietly when asked; returns the module."""
    if "tensorflow" in sys.modules or not quiet_requested():
        import tensorflow

        return tensorflow
    with native_stderr_filtered():
        import keras  # noqa: F401  (Keras 3 imports TensorFlow: same libraries, same noise)
        import tensorflow
    return tensorflow
