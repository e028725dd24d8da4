"""Keras initializers, regularizers and constraints as hashable, validated values.

A `jaxgru.GRUCell` must be hashable (it is a static argument of `jax.jit`), but Keras
describes these objects by mutable config dicts such as
``{"class_name": "MaxNorm", "config": {"max_value": 2, "axis": 0}}``. `KerasObject` keeps
the class name and a frozen copy of the config, and builds the JAX function from a
registry of factories when called. Keras has no JAX-side equivalent of this, so it is
written here.

Each factory declares its config fields with `fields`: one checker per field, which
validates a value when the cell is built and returns the hashable value that is stored
(numbers as finite Python floats, axes as ints or tuples of ints, strings as Keras's
canonical spelling). The rules:

* An identifier of the wrong kind (not None, a string, a dict, a `KerasObject` or a
  callable) is a ``TypeError``; anything wrong inside a name or a config dict (an unknown
  name or key, a ``class_name`` that is not a string, a ``config`` that is not a dict, a
  field of the wrong type or value) is a ``ValueError``. Messages start with the
  constructor argument (``kernel_constraint: ...``) and name the field and what it expects.
* Numbers are real and finite, never bools or strings (Keras would turn NaN or infinity
  into NaN weights or losses, and reads ``True`` as 1).
* A value that tf_keras and Keras 3 (on its TensorFlow and JAX backends) compute
  differently is rejected rather than given one of their meanings; the modules list them.
* Errors that depend on the weight (an ``axis`` beyond its rank, an initializer that
  needs a 2-D shape) can only be raised when the weight is seen; they are raised then,
  still naming the argument.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Factory = Callable[..., Callable]
Checker = Callable[[Any], Any]

# The keys of a Keras config dict besides "class_name" and "config": tf_keras's and Keras
# 3's serialization adds them; they carry nothing that jaxgru uses.
_SERIALIZATION_KEYS = frozenset({"module", "registered_name"})
_DEFAULT = object()
"""Returned by a checker for a None that Keras reads as the field's default (``L1(None)``)."""


# ---------------------------------------------------------------- field checkers
def _show(value: Any) -> str:
    """A short repr for error messages (a hostile config can hold huge values)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _a(kind: str) -> str:
    """``kind`` with its article: "an initializer", "a constraint"."""
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _invalid(expected: str, value: Any) -> ValueError:
    return ValueError(f"expected {expected}, got {_show(value)}")


def _finite_float(value: Any) -> float | None:
    """``value`` as a finite float if it is a real, finite, non-bool number, else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        value = float(value)
    except OverflowError:  # an int beyond float range
        return None
    return value if math.isfinite(value) else None


def real(minimum: float | None = None, *, exclusive: bool = False, none_is_default: bool = False,
         expected: str | None = None) -> Checker:
    """A finite real number (not a bool), at least ``minimum`` (above it if ``exclusive``).

    The stored value is a Python float. With ``none_is_default``, None stands for the
    field's default, as Keras's regularizers read it.
    """
    if expected is None:
        bound = "" if minimum is None else f" {'>' if exclusive else '>='} {minimum:g}"
        expected = f"a finite number{bound}"

    def check(value):
        if value is None and none_is_default:
            return _DEFAULT
        number = _finite_float(value)
        if number is None or (minimum is not None and (number <= minimum if exclusive else number < minimum)):
            raise _invalid(expected, value)
        return number

    return check


def choice(*options: str, aliases: Mapping[str, str] | None = None, lowercase: bool = False) -> Checker:
    """One of ``options`` (after Keras's lower-casing and ``aliases``, if any); stores the option."""
    aliases = dict(aliases or {})

    def check(value):
        if isinstance(value, str):
            key = value.lower() if lowercase else value
            key = aliases.get(key, key)
            if key in options:
                return key
        raise _invalid(f"one of {list(options)}", value)

    return check


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int_tuple(value: Any) -> tuple[int, ...] | None:
    """A list or tuple of ints as a tuple, else None."""
    if isinstance(value, (list, tuple)) and all(_is_int(v) for v in value):
        return tuple(int(v) for v in value)
    return None


def axis(value: Any) -> int | tuple[int, ...] | None:
    """A constraint's ``axis``: an int, a list of ints, or None (all axes), as Keras reduces."""
    if value is None:
        return None
    if _is_int(value):
        return int(value)
    listed = _int_tuple(value)
    if listed is None:
        raise _invalid("an integer, a list of integers or None", value)
    return listed


def axes(value: Any) -> tuple[int, ...] | None:
    """Keras 3's ``input_axes``/``output_axes``: a list of ints, or None."""
    if value is None:
        return None
    result = _int_tuple(value)
    if result is None:
        raise _invalid("a list of integers or None", value)
    return result


def fields(**checkers: Checker) -> Callable[[Factory], Factory]:
    """Declares a factory's config fields, one checker each (names as the factory's arguments)."""
    def declare(factory: Factory) -> Factory:
        parameters = set(inspect.signature(factory).parameters)
        if parameters != set(checkers):
            raise AssertionError(f"{factory.__name__}: fields {sorted(checkers)} != arguments {sorted(parameters)}")
        factory.fields = checkers  # type: ignore[attr-defined]  # a function attribute, read back by _build
        return factory

    return declare


def canonical_axes(axes: int | Sequence[int] | None, ndim: int, name: str = "axis", *,
                   distinct: bool = True) -> tuple[int, ...]:
    """``axes`` as non-negative ints below ``ndim`` (None means all of them).

    Raises a ValueError for an axis out of range, or repeated if ``distinct``, as tf_keras
    and Keras 3 do.
    """
    if axes is None:
        return tuple(range(ndim))
    listed = (axes,) if isinstance(axes, int) else tuple(axes)
    for a in listed:
        if not -ndim <= a < ndim:
            raise ValueError(f"{name} {a} is out of range for a {ndim}-D weight")
    result = tuple(a % ndim for a in listed)
    if distinct and len(set(result)) != len(result):
        raise ValueError(f"{name} {list(listed)} repeats an axis of a {ndim}-D weight")
    return result


# ---------------------------------------------------------------- KerasObject
@dataclasses.dataclass(frozen=True)
class KerasObject:
    """A Keras object of one `kind` ("initializer", "regularizer", "constraint").

    Calling it calls the JAX function that `registry[class_name](**config)` builds, so an
    initializer is called as ``init(key, shape, dtype)``, a regularizer as ``reg(w)``
    and a constraint as ``constraint(w)``. Errors raised then (e.g. an ``axis`` beyond
    the weight's rank) start with ``argument``, the constructor argument it was given
    as. Equality and hashing see only ``kind``, ``class_name`` and ``config``.
    """

    kind: str
    class_name: str
    config: tuple[tuple[str, Any], ...]
    registry: Mapping[str, Factory] = dataclasses.field(compare=False, repr=False, hash=False)
    argument: str = dataclasses.field(default="", compare=False, repr=False, hash=False)

    def build(self) -> Callable:
        return self.registry[self.class_name](**dict(self.config))

    def __call__(self, *args, **kwargs):
        fn = self.build()
        try:
            return fn(*args, **kwargs)
        except (TypeError, ValueError) as e:
            if not self.argument:
                raise
            raise (TypeError if isinstance(e, TypeError) else ValueError)(f"{self.argument}: {e}") from e

    def get_config(self) -> dict:
        """The Keras serialization: ``{"class_name": ..., "config": {...}}``."""
        return {"class_name": self.class_name, "config": dict(self.config)}


# ---------------------------------------------------------------- resolution
def resolve(
    identifier: Any,
    *,
    argument: str,
    kind: str,
    registry: Mapping[str, Factory],
    names: Mapping[str, tuple[str, Mapping[str, Any]]],
    ignored_keys: frozenset[str] = frozenset(),
) -> KerasObject | Callable | None:
    """Turns a Keras identifier into a validated `KerasObject` (or keeps a plain callable).

    Args:
      identifier: None, a Keras string name ("l2", "glorot_uniform"), a class name
        ("GlorotUniform"), a Keras config dict (as ``get_config()`` emits it, with or
        without its "module"/"registered_name" keys), a `KerasObject` or a callable.
      argument: the constructor argument being resolved, named in error messages.
      kind: "initializer", "regularizer" or "constraint".
      registry: class name -> factory of the JAX function, its fields declared by `fields`.
      names: Keras string name -> (class name, config that the string stands for).
      ignored_keys: config keys that have no meaning in JAX (e.g. an initializer's
        ``seed``: jaxgru takes the randomness from the PRNG key) and are dropped.

    Raises:
      TypeError: for an identifier of none of these kinds, or a `KerasObject` of another kind.
      ValueError: for an unknown name, or a bad config dict (see the module docstring).
    """
    if identifier is None:
        return None
    if isinstance(identifier, KerasObject):
        if identifier.kind != kind:
            raise TypeError(f"{argument}: expected {_a(kind)}, got the {identifier.kind} {identifier.class_name}.")
        class_name = _class_name(argument, kind, registry, {}, identifier.class_name)[0]
        config: Mapping[str, Any] = dict(identifier.config)
    elif isinstance(identifier, str):
        if identifier not in names and identifier not in registry:
            known = sorted(set(names) | set(registry))
            raise ValueError(f"{argument}: unknown {kind} {identifier!r}; expected one of {known}.")
        class_name, config = _class_name(argument, kind, registry, names, identifier)
    elif isinstance(identifier, Mapping):
        class_name, preset = _class_name(argument, kind, registry, names, _dict_class_name(argument, kind, identifier))
        config = {**preset, **_dict_config(argument, kind, identifier)}
    elif callable(identifier):
        return identifier
    else:
        raise TypeError(
            f"{argument}: expected None, a Keras name, a Keras config dict or a callable {kind}, "
            f"got {type(identifier).__name__}."
        )
    return _build(argument, kind, registry, class_name, config, ignored_keys)


def _dict_class_name(argument: str, kind: str, identifier: Mapping) -> str:
    """The "class_name" of a config dict, after checking the dict's keys."""
    extra = [k for k in identifier if k not in _SERIALIZATION_KEYS | {"class_name", "config"}]
    if extra:
        raise ValueError(f"{argument}: {_a(kind)} config dict has keys 'class_name', 'config' (and Keras's "
                         f"{sorted(_SERIALIZATION_KEYS)}), got also {_show(extra)}.")
    if "class_name" not in identifier:
        raise ValueError(f"{argument}: {_a(kind)} config dict needs a 'class_name' key, "
                         f"got keys {_show(list(identifier))}.")
    name = identifier["class_name"]
    if not isinstance(name, str):
        raise ValueError(  # noqa: TRY004 (anything wrong inside a config dict is a ValueError)
            f"{argument}: {_a(kind)} config dict's 'class_name' must be a string, got {_show(name)}.")
    return name


def _dict_config(argument: str, kind: str, identifier: Mapping) -> dict:
    """The "config" of a config dict: a dict (its keys are checked against the fields
    later); absent or None is empty."""
    config = identifier.get("config")
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ValueError(  # noqa: TRY004 (anything wrong inside a config dict is a ValueError)
            f"{argument}: {_a(kind)} config dict's 'config' must be a dict or None, got {_show(config)}.")
    return dict(config)


def _class_name(argument, kind, registry, names, name: str) -> tuple[str, Mapping[str, Any]]:
    """The registered class a Keras class name or string name stands for, and its preset config."""
    if name in registry:
        return name, {}
    if name in names:
        return names[name]
    raise ValueError(f"{argument}: unknown {kind} class {name!r}; expected one of {sorted(registry)}.")


def _build(argument, kind, registry, class_name, config, ignored_keys) -> KerasObject:
    """Validates ``config`` against the factory's fields and builds the `KerasObject`.

    The stored config keeps every field, defaults filled in, except those left at a
    default of None (Keras 3's optional ``input_axes``...), so that tf_keras can read it
    back.
    """
    factory = registry[class_name]
    prefix = f"{argument}: bad config for {kind} {class_name}"
    config = {k: v for k, v in config.items() if k not in ignored_keys}
    unknown = [k for k in config if k not in factory.fields]
    if unknown:
        raise ValueError(f"{prefix}: unknown key {_show(unknown[0])}; expected some of {sorted(factory.fields)}.")
    defaults = {name: p.default for name, p in inspect.signature(factory).parameters.items()}
    checked = {}
    for name, check in factory.fields.items():
        try:
            value = check(config.get(name, defaults[name]))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{prefix}: {name}: {e}.") from None
        checked[name] = defaults[name] if value is _DEFAULT else value
    stored = {k: v for k, v in checked.items() if not (v is None and defaults[k] is None)}
    obj = KerasObject(kind, class_name, tuple(sorted(stored.items())), registry, argument)
    try:
        obj.build()  # the factory's checks between fields (e.g. min_value <= max_value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{prefix}: {e}.") from None
    return obj
