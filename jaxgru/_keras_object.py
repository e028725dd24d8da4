"""`KerasObject` for the modules that import it from here; it lives in `jaxgru._keras_objects.base`."""

from jaxgru._keras_objects.base import KerasObject

__all__ = ["KerasObject"]
