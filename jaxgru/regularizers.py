"""Keras weight regularizers as pure functions ``w -> scalar`` (tf_keras definitions).

* ``L1(l1)``: ``l1 * sum(|w|)``; ``L2(l2)``: ``l2 * sum(w**2)`` (no 1/2);
  ``L1L2(l1, l2)``: their sum.
* String names use Keras's defaults: ``"l1"`` = L1(0.01), ``"l2"`` = L2(0.01),
  ``"l1_l2"`` = L1L2(0.01, 0.01) (the class itself defaults to 0, 0).
* ``OrthogonalRegularizer(factor=0.01, mode="rows")``: ``factor / 2`` times the mean
  absolute off-diagonal cosine similarity between rows (or columns); 2-D weights only.

Factors (checked when the cell is built) are finite numbers >= 0; None stands for the
class's default, as in Keras (``L1(None)`` is ``L1(0.01)``, ``L1L2(None, None)`` adds
nothing). A negative factor is rejected: tf_keras accepts it (a negative penalty that
rewards large weights), Keras 3 rejects it. ``mode`` is "rows" or "columns", as in Keras.

optax has no regularizer objects (it decays weights in the update instead), so these are
written here. Add ``cell.penalty(params)`` to the loss to apply them.
"""

from jaxgru._deprecations import module_getattr
from jaxgru._keras_objects.regularizers import REGISTRY, get

__all__ = ["REGISTRY", "get"]

__getattr__ = module_getattr(__name__)
