"""Keras initializers, regularizers and constraints as hashable values.

A `jaxgru.GRUCell` must be hashable (it is a static argument of `jax.jit`), but Keras
describes these objects by mutable config dicts such as
``{"class_name": "MaxNorm", "config": {"max_value": 2, "axis": 0}}``. `KerasObject` keeps
the class name and a frozen copy of the config, and builds the JAX function from a
registry of factories when called. Keras has no JAX-side equivalent of this, so it is
written here.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping

Factory = Callable[..., Callable]


def _freeze(value: Any) -> Any:
    """Lists become tuples so that configs hash; everything else is kept as is."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@dataclasses.dataclass(frozen=True)
class KerasObject:
    """A Keras object of one `kind` ("initializer", "regularizer", "constraint").

    Calling it calls the JAX function that `registry[class_name](**config)` builds, so an
    initializer is called as ``init(key, shape, dtype)``, a regularizer as ``reg(w)``
    and a constraint as ``constraint(w)``.
    """

    kind: str
    class_name: str
    config: tuple[tuple[str, Any], ...]
    registry: Mapping[str, Factory] = dataclasses.field(compare=False, repr=False, hash=False)

    def build(self) -> Callable:
        return self.registry[self.class_name](**dict(self.config))

    def __call__(self, *args, **kwargs):
        return self.build()(*args, **kwargs)

    def get_config(self) -> dict:
        """The Keras serialization: ``{"class_name": ..., "config": {...}}``."""
        return {"class_name": self.class_name, "config": dict(self.config)}


def resolve(
    identifier: Any,
    *,
    argument: str,
    kind: str,
    registry: Mapping[str, Factory],
    names: Mapping[str, tuple[str, Mapping[str, Any]]],
    ignored_keys: frozenset[str] = frozenset(),
) -> KerasObject | Callable | None:
    """Turns a Keras identifier into a `KerasObject` (or keeps a plain callable).

    Args:
      identifier: None, a Keras string name ("l2", "glorot_uniform"), a class name
        ("GlorotUniform"), a Keras config dict (as ``get_config()`` emits it, with or
        without its "module"/"registered_name" keys), a `KerasObject` or a callable.
      argument: the constructor argument being resolved, named in error messages.
      kind: "initializer", "regularizer" or "constraint".
      registry: class name -> factory of the JAX function.
      names: Keras string name -> (class name, config that the string stands for).
      ignored_keys: config keys that have no meaning in JAX (e.g. an initializer's
        ``seed``: jaxgru takes the randomness from the PRNG key) and are dropped.
    """
    if identifier is None:
        return None
    if isinstance(identifier, KerasObject):
        if identifier.kind != kind:
            raise TypeError(f"{argument}: expected a {kind}, got the {identifier.kind} {identifier.class_name}.")
        return identifier
    if isinstance(identifier, str):
        if identifier in names:
            class_name, config = names[identifier]
        elif identifier in registry:
            class_name, config = identifier, {}
        else:
            known = sorted(set(names) | set(registry))
            raise ValueError(f"{argument}: unknown {kind} {identifier!r}; expected one of {known}.")
        return _build(argument, kind, registry, class_name, config, ignored_keys)
    if isinstance(identifier, Mapping):
        if "class_name" not in identifier:
            raise ValueError(f"{argument}: a {kind} config dict needs a 'class_name' key, got keys {sorted(identifier)}.")
        name = identifier["class_name"]
        config = identifier.get("config") or {}
        if name in registry:
            class_name, defaults = name, {}
        elif name in names:
            class_name, defaults = names[name]
        else:
            raise ValueError(f"{argument}: unknown {kind} class {name!r}; expected one of {sorted(registry)}.")
        return _build(argument, kind, registry, class_name, {**defaults, **config}, ignored_keys)
    if callable(identifier):
        return identifier
    raise TypeError(
        f"{argument}: expected None, a Keras name, a Keras config dict or a callable {kind}, "
        f"got {type(identifier).__name__}."
    )


def _build(argument, kind, registry, class_name, config, ignored_keys) -> KerasObject:
    # The config keeps every argument, defaults filled in, except those left at a default
    # of None (Keras 3's optional ``input_axes``...), so that tf_keras can read it back.
    defaults = {name: p.default for name, p in inspect.signature(registry[class_name]).parameters.items()
                if p.default is not inspect.Parameter.empty}
    config = {k: _freeze(v) for k, v in {**defaults, **config}.items()
              if k not in ignored_keys and not (v is None and k in defaults and defaults[k] is None)}
    obj = KerasObject(kind, class_name, tuple(sorted(config.items())), registry)
    try:
        obj.build()  # validates the config keys and values now, not at trace time
    except (TypeError, ValueError) as e:
        raise ValueError(f"{argument}: bad config for {kind} {class_name}: {e}") from None
    return obj
