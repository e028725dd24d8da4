"""What a Keras-style GRU layer module must return: `jaxgru.rnn` with the layer's options."""

import jaxgru

LAYER_FLAGS = ("go_backwards", "return_sequences", "time_major", "zero_output_for_mask")


def expected_layer_output(cell, params, inputs, options, mask=None, initial_state=None):
    """``outputs``, or ``(outputs, final_state)`` with ``options["return_state"]``."""
    outputs, final = jaxgru.rnn(cell, params, inputs, mask=mask, initial_state=initial_state,
                                **{k: options.get(k, False) for k in LAYER_FLAGS})
    return (outputs, final) if options.get("return_state") else outputs
