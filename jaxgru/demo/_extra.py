"""The ``demo`` extra (matplotlib, tqdm, scikit-learn), imported only when the demo runs."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "import_extra"]


class MissingExtraError(ImportError):
    """A package of the ``demo`` extra is not installed."""



def import_extra(module: str) -> ModuleType:
    """Imports a module of the ``demo`` extra, or raises `MissingExtraError` saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"The jaxgru demo needs {module.split('.')[0]!r}, which is not installed. "
            f"Install the demo extra: pip install -e \".[demo]\" (from a clone) or pip install \"jaxgru[demo]\"."
        ) from error
