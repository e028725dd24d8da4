"""from_cudnn / to_cudnn against tf_keras's own cuDNN conversion and PyTorch's flat weights."""

import jax
import numpy as np
import pytest
from keras_reference import keras_cell
from references import HEAVY, lazy, tf, torch

import jaxgru

tf_keras_gru = lazy("tf_keras.src.layers.rnn.gru")

INPUT, UNITS = 3, 4


class _Captured(Exception):
    pass


def keras_cudnn_params(weights, monkeypatch):
    """The buffer tf_keras's GPU path (``gpu_gru``) builds and passes to ``CudnnRNNV3``.

    The conversion runs for real; only the GPU kernel, which this machine cannot run, is
    replaced by a function that records its ``params`` argument.
    """
    assert tf_keras_gru.tf.sysconfig.get_build_info()["is_cuda_build"]  # the build whose gpu_gru swaps z and r

    def record(**kwargs):
        raise _Captured(kwargs["params"].numpy())

    monkeypatch.setattr(tf_keras_gru.tf.raw_ops, "CudnnRNNV3", record)
    kernel, recurrent_kernel, bias = (tf.constant(w) for w in weights)
    with pytest.raises(_Captured) as captured:
        tf_keras_gru.gpu_gru(inputs=tf.zeros((1, 2, INPUT)), init_h=tf.zeros((1, UNITS)), kernel=kernel,
                             recurrent_kernel=recurrent_kernel, bias=bias, mask=None, time_major=False,
                             go_backwards=False, sequence_lengths=None, return_sequences=True)
    return captured.value.args[0]


@HEAVY
def test_to_cudnn_equals_keras_gpu_conversion_and_round_trips(monkeypatch):
    weights = keras_cell(UNITS, INPUT, seed=2).get_weights()
    params = jaxgru.from_keras(weights)
    flat = jaxgru.to_cudnn(params)
    assert flat.shape == (3 * UNITS * (INPUT + UNITS + 2),) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat, keras_cudnn_params(weights, monkeypatch))
    back = jaxgru.from_cudnn(flat, INPUT, UNITS)
    for a, b in zip(jaxgru.to_keras(back), weights):
        np.testing.assert_array_equal(a, b)


@HEAVY
def test_to_cudnn_equals_torch_flat_weights():
    module = torch.nn.GRU(INPUT, UNITS)
    torch_flat = torch.cat([w.detach().reshape(-1) for w in module._flat_weights]).numpy()
    params = jaxgru.from_torch(module.state_dict())
    np.testing.assert_array_equal(jaxgru.to_cudnn(params), torch_flat)
    np.testing.assert_array_equal(jaxgru.from_cudnn(torch_flat, INPUT, UNITS)["bias"], params["bias"])


def test_bias_free_params_get_zero_biases():
    cell = jaxgru.GRUCell(UNITS, use_bias=False)
    params = cell.init(jax.random.key(0), INPUT)
    with pytest.raises(ValueError, match="without a bias"):
        jaxgru.to_cudnn(params)
    back = jaxgru.from_cudnn(jaxgru.to_cudnn(params, cell=cell), INPUT, UNITS)
    np.testing.assert_array_equal(back["bias"], np.zeros((2, 3 * UNITS)))
    np.testing.assert_array_equal(back["kernel"], params["kernel"])


def test_reset_before_has_no_cudnn_equivalent():
    params = jaxgru.GRUCell(UNITS, reset_after=False).init(jax.random.key(0), INPUT)
    with pytest.raises(ValueError, match="reset_after=False.*cuDNN's GRU"):
        jaxgru.to_cudnn(params)


@pytest.mark.parametrize("flat,input_dim,units,error,message", [
    (np.zeros(107), 3, 4, ValueError, r"flat: expected shape \(108,\) = \(3\*units\*\(input_dim \+ units \+ 2\),\)"),
    (np.zeros((2, 54)), 3, 4, ValueError, r"flat: expected shape \(108,\)"),
    (np.zeros(108), 0, 4, ValueError, "input_dim: expected a positive integer"),
    (np.zeros(108), 3, 4.0, TypeError, "units: expected an integer"),
    (np.zeros(108, np.int32), 3, 4, TypeError, "flat: expected floating-point"),
])
def test_malformed_flat(flat, input_dim, units, error, message):
    with pytest.raises(error, match=message):
        jaxgru.from_cudnn(flat, input_dim, units)
