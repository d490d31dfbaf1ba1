"""Read pickled numpy arrays without letting the file run code (public API).

Many datasets ship as pickles, and ``pickle.load`` on a hostile file runs arbitrary code.
:class:`ArrayUnpickler` resolves only the globals numpy needs to rebuild an ndarray
(``_reconstruct``, ``ndarray``, ``dtype``) and ``_codecs.encode`` (bytes in protocol-2 pickles
written by Python 3: it can only turn a string into bytes); dicts, lists, strings and numbers
need no globals. Anything else (``os.system``, ``builtins.eval``, ...) raises
:class:`RefusedGlobal` before it can be called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

ALLOWED_GLOBALS = frozenset({
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
})


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle asked for a global outside :data:`ALLOWED_GLOBALS`; nothing was called."""


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numpy arrays; any other global is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise RefusedGlobal(f"refused global {module}.{name}")


def load_arrays(path: Path, *, encoding: str = "bytes") -> Any:
    """Unpickle ``path`` with :class:`ArrayUnpickler`. ``encoding="bytes"`` reads python-2 era
    pickles (bytes dict keys), as CIFAR's are. Errors are pickle's own, or RefusedGlobal."""
    with open(path, "rb") as handle:
        return ArrayUnpickler(io.BufferedReader(handle), encoding=encoding).load()
