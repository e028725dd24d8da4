"""Every deprecated keyword, name and module in jaxgru, in three tables.

A rename, a name leaving the public surface or a module going is one entry here, not code
in the function or module concerned:

* `RENAMED_KEYWORDS`: ``old -> new`` keyword names. A function decorated with
  `renamed_keywords` accepts ``old=`` for one release, with a `DeprecationWarning`, as its
  parameter ``new``; passing both is a TypeError.
* `MOVED_NAMES`: per public module, ``name -> (home, hint)``: the name is no longer in the
  module's ``__all__``; ``module.name`` still resolves (through the module's
  ``__getattr__ = module_getattr(__name__)``, PEP 562, as optax does) to ``home``
  (``"package.module:attribute"``), with a `DeprecationWarning` that ends with ``hint``,
  at each use.
* `DEPRECATED_MODULES`: ``module -> hint``: a module that goes; it calls
  `warn_deprecated_module` first thing, so importing it warns once (Python imports a module
  once), pointing at the importing line, with ``hint``. Deprecated modules are not counted
  in the public surface.

Entries go in the release after the one that deprecated them.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["RENAMED_KEYWORDS", "MOVED_NAMES", "DEPRECATED_MODULES", "FILELESS_MODULES", "renamed_keywords",
           "module_getattr", "install_fileless_modules", "warn_deprecated_module"]

RENAMED_KEYWORDS: dict[str, str] = {
    "masks": "dropout_masks",
    "backward": "gradient",
}

_DEMO_INTERNAL = "it is internal to the demo; run the demo with jaxgru.demo.run or python -m jaxgru demo."
_NAMES_HINT = "{0}.get resolves these Keras names (an unknown name's error lists them)."
_INTEROP = {"cudnn": ("from_cudnn", "to_cudnn"), "equinox": ("from_equinox", "to_equinox"),
            "flax": ("from_flax_linen", "from_flax_nnx", "to_flax_linen"), "haiku": ("from_haiku", "to_haiku"),
            "keras": ("from_keras", "to_keras"), "keras_files": ("load_keras_weights",),
            "keras_layers": ("layer_from_config",), "onnx": ("from_onnx", "to_onnx"),
            "torch": ("from_torch", "from_torch_stack", "to_torch", "to_torch_stack")}

MOVED_NAMES: dict[str, dict[str, tuple[str, str]]] = {
    "jaxgru.activations": {
        "ACTIVATIONS": ("jaxgru._keras_objects.activations:ACTIVATIONS",
                        "jaxgru.activations.get resolves a name (an unknown name's error lists them)."),
        "Activation": ("jaxgru._keras_objects.activations:Activation",
                       "annotate with Callable[[jax.Array], jax.Array], or jaxgru.activations.ActivationLike "
                       "for what a cell takes."),
        "validate": ("jaxgru._keras_objects.activations:validate",
                     "it is internal now; jaxgru.activations.get resolves and checks an activation."),
    },
    **{f"jaxgru.{kind}": {"NAMES": (f"jaxgru._keras_objects.{kind}:NAMES", _NAMES_HINT.format(f"jaxgru.{kind}"))}
       for kind in ("initializers", "regularizers", "constraints")},
    "jaxgru.demo": {
        "History": ("jaxgru.demo._train:History", "it is the type of DemoResult.history; " + _DEMO_INTERNAL),
        "init_model": ("jaxgru.demo._train:init_model", _DEMO_INTERNAL),
        "apply_model": ("jaxgru.demo._train:apply_model", _DEMO_INTERNAL),
        "train": ("jaxgru.demo._train:train", _DEMO_INTERNAL),
        "make_task": ("jaxgru.demo._tasks:make_task", _DEMO_INTERNAL),
        "plot_learning_curves": ("jaxgru.demo._plots:plot_learning_curves", _DEMO_INTERNAL),
        "plot_predictions": ("jaxgru.demo._plots:plot_predictions", _DEMO_INTERNAL),
    },
    "jaxgru.interop": {name: (f"jaxgru.interop.{module}:{name}",
                              f"use jaxgru.{name} (or jaxgru.interop.{module}.{name}).")
                       for module, names in _INTEROP.items() for name in names},
    "jaxgru.interop.onnx": {
        "MIN_OPSET": ("jaxgru.interop.onnx:_MIN_OPSET", "to_onnx's docstring states the opsets it writes."),
        "default_max_entries": ("jaxgru.interop.onnx:_default_max_entries",
                                "from_onnx's docstring states its max_entries= default."),
    },
    "jaxgru.interop.keras_layers": {
        "MAX_CONFIG_DEPTH": ("jaxgru.interop.keras_layers:_MAX_CONFIG_DEPTH",
                             "layer_from_config's docstring states the depth it reads."),
    },
    "jaxgru.rnn": {  # a module without a file: `install_fileless_modules`
        "rnn": ("jaxgru._core.recurrent:rnn", "import rnn from jaxgru (jaxgru.rnn is the function)."),
        "bidirectional": ("jaxgru._core.recurrent:bidirectional", "import bidirectional from jaxgru."),
        "CPU_CHUNK_ELEMENTS": ("jaxgru._core.runner:CPU_CHUNK_ELEMENTS", "it is internal now (time_chunk= chooses)."),
        "CPU_STEPWISE_ELEMENTS": ("jaxgru._core.runner:CPU_STEPWISE_ELEMENTS",
                                  "it is internal now (time_chunk=1 chooses)."),
        "default_time_chunk": ("jaxgru._core.runner:default_time_chunk", "it is internal now (time_chunk= chooses)."),
        "default_stepwise": ("jaxgru._core.runner:default_stepwise", "it is internal now (time_chunk=1 chooses)."),
        "check_bidirectional_params": ("jaxgru._core.layer_options:check_bidirectional_params",
                                       "it is internal now; jaxgru.bidirectional checks its params."),
        "MERGE_MODES": ("jaxgru._core.layer_options:MERGE_MODES",
                        "it is internal now; the merge modes are 'concat', 'sum', 'ave', 'mul' and None."),
    },
    "jaxgru.stacked": {
        "check_dropout": ("jaxgru._core.layer_options:check_dropout",
                          "it is internal now; jaxgru.stacked_rnn checks its dropout."),
        "check_stack_options": ("jaxgru._core.layer_options:check_stack_options",
                                "it is internal now; jaxgru.stacked_rnn checks its options."),
    },
    "jaxgru.dropout": {
        "is_active": ("jaxgru._core.validation:dropout_active",
                      "it is internal now (Keras applies dropout for 0 < rate < 1)."),
    },
}

DEPRECATED_MODULES: dict[str, str] = {
    "jaxgru.cell": "import GRUCell from jaxgru.",
    "jaxgru.dropout": "import DropoutMasks from jaxgru (GRUCell.dropout_masks draws them).",
    "jaxgru.stacked": "import stacked_rnn from jaxgru.",
    "jaxgru.flax": "import jaxgru.linen instead (the same modules and functions).",
    "jaxgru.demo_tasks": "its tasks are internal to the demo; run them with jaxgru.demo.run(task=...) or "
                         "python -m jaxgru demo --task adding|digits.",
}

# Module paths that can no longer be files: "jaxgru.rnn" is the function `jaxgru.rnn` (a
# submodule of that name would replace the package's attribute once imported). Each is a
# module object in `sys.modules` (so ``from jaxgru.rnn import rnn`` still works) whose
# every name comes from `MOVED_NAMES`, with a warning.
FILELESS_MODULES: tuple[str, ...] = ("jaxgru.rnn",)

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


def warn_deprecated_module(module: str) -> None:
    """Warns that ``module`` (a key of `DEPRECATED_MODULES`), being imported, goes in the next
    release; called first thing in that module, so the warning points at the importing line."""
    warnings.warn(f"{module} is deprecated and goes in the next release; {DEPRECATED_MODULES[module]}",
                  DeprecationWarning, stacklevel=3)


def install_fileless_modules() -> None:
    """Puts each of `FILELESS_MODULES` in `sys.modules` (``jaxgru/__init__`` calls it): a
    module whose ``__getattr__`` is `module_getattr`'s, without setting it as an attribute
    of its package."""
    for name in FILELESS_MODULES:
        if name not in sys.modules:
            module = types.ModuleType(name, f"Deprecated: {name} has no module of its own any more.")
            module.__getattr__ = module_getattr(name)  # type: ignore[method-assign]
            sys.modules[name] = module
