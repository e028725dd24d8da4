"""Every deprecated keyword and name in jaxgru, in two tables, each warning once per use.

A rename or a name leaving the public surface is one entry here, not code in the function
or module concerned:

* `RENAMED_KEYWORDS`: ``old -> new`` keyword names. A function decorated with
  `renamed_keywords` accepts ``old=`` for one release, with a `DeprecationWarning`, as its
  parameter ``new``; passing both is a TypeError.
* `MOVED_NAMES`: per public module, ``name -> (home, hint)``: the name is no longer in the
  module's ``__all__``; ``module.name`` still resolves (through the module's
  ``__getattr__ = module_getattr(__name__)``, PEP 562, as optax does) to ``home``
  (``"package.module:attribute"``), with a `DeprecationWarning` that ends with ``hint``.

Entries go in the release after the one that deprecated them.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["RENAMED_KEYWORDS", "MOVED_NAMES", "renamed_keywords", "module_getattr"]

RENAMED_KEYWORDS: dict[str, str] = {
    "masks": "dropout_masks",
    "backward": "gradient",
}

MOVED_NAMES: dict[str, dict[str, tuple[str, str]]] = {}

_Function = TypeVar("_Function", bound=Callable[..., Any])


def renamed_keywords(function: _Function) -> _Function:
    """Lets ``function`` take the old names in `RENAMED_KEYWORDS` of its parameters.

    ``function(old=value)`` warns and calls ``function(new=value)``; ``function(old=a,
    new=b)`` is a TypeError naming both. The signature shown (``inspect.signature``, the
    docs) is the function's own, without the old names.
    """
    parameters = inspect.signature(function).parameters
    renames = {old: new for old, new in RENAMED_KEYWORDS.items() if new in parameters and old not in parameters}
    if not renames:
        raise ValueError(f"{function.__qualname__} has none of the renamed keywords' new names.")

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for old in renames.keys() & kwargs.keys():
            new = renames[old]
            if new in kwargs:
                raise TypeError(f"{old}, {new}: {old}= is the deprecated name of {new}=; pass only {new}=.")
            warnings.warn(f"{old}= is deprecated and will be removed in the next release; use {new}= instead.",
                          DeprecationWarning, stacklevel=2)
            kwargs[new] = kwargs.pop(old)
        return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def module_getattr(module: str) -> Callable[[str], Any]:
    """The PEP 562 ``__getattr__`` of public module ``module``: its `MOVED_NAMES`, with a
    warning; any other missing name an AttributeError, as usual."""
    moved = MOVED_NAMES.get(module, {})

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        home, hint = moved[name]
        warnings.warn(f"{module}.{name} is deprecated and goes in the next release; {hint}",
                      DeprecationWarning, stacklevel=2)
        home_module, _, attribute = home.partition(":")
        return getattr(importlib.import_module(home_module), attribute)

    return __getattr__
