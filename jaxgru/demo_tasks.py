"""Deprecated: the demo's tasks are internal to `jaxgru.demo`. Importing this module warns
(`DeprecationWarning`); it goes in the next release."""

from jaxgru._deprecations import warn_deprecated_module

warn_deprecated_module(__name__)

from jaxgru.demo._tasks import (  # noqa: E402
    Task,
    accuracy,
    adding_problem,
    adding_task,
    cross_entropy,
    digits_task,
    mean_squared_error,
)

__all__ = ["Task", "accuracy", "adding_problem", "adding_task", "cross_entropy", "digits_task", "mean_squared_error"]
