"""Hostile Keras initializer/regularizer/constraint configs given to `jaxgru.GRUCell`.

* Every documented field of every supported class, given a value of the wrong type or a
  non-finite number, is a ValueError at construction naming the argument and the field.
* Malformed config dicts (class_name or config of the wrong type, stray keys) likewise.
* The edge values jaxgru accepts compute what tf_keras and Keras 3 (on JAX, conftest.py)
  compute, both run here as the references; those it rejects are ones where they
  disagree, shown by running them, or that bound a norm below 0.
* A property test: random configs either fail at construction naming the argument, or
  give a cell that hashes, round-trips through JSON, is a static argument of `jax.jit`,
  and initialises, penalises and constrains to finite values.
"""

import inspect
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_params
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import jaxgru
from jaxgru._keras_objects import constraints, initializers, regularizers
from references import HEAVY, keras3, tf
from references import keras as tf_keras

NAN, INF = float("nan"), float("inf")
UNITS, INPUT_DIM = 4, 3
MODULES = {"initializer": initializers, "regularizer": regularizers, "constraint": constraints}
ARGUMENTS = {f"{prefix}_{kind}": kind for kind in MODULES for prefix in ("kernel", "recurrent", "bias")}

# Each class's documented fields by what they hold (written from Keras's docs, not read
# from jaxgru, so that test_every_field_is_covered notices a field jaxgru adds).
NUMBER_FIELDS = {
    ("initializer", "Constant"): ["value"],
    ("initializer", "RandomNormal"): ["mean", "stddev"],
    ("initializer", "TruncatedNormal"): ["mean", "stddev"],
    ("initializer", "RandomUniform"): ["minval", "maxval"],
    ("initializer", "VarianceScaling"): ["scale"],
    ("initializer", "Orthogonal"): ["gain"],
    ("initializer", "Identity"): ["gain"],
    ("regularizer", "L1"): ["l1"],
    ("regularizer", "L2"): ["l2"],
    ("regularizer", "L1L2"): ["l1", "l2"],
    ("regularizer", "OrthogonalRegularizer"): ["factor"],
    ("constraint", "MaxNorm"): ["max_value"],
    ("constraint", "MinMaxNorm"): ["min_value", "max_value", "rate"],
}
STRING_FIELDS = {
    ("initializer", "VarianceScaling"): ["mode", "distribution"],
    ("regularizer", "OrthogonalRegularizer"): ["mode"],
}
AXIS_FIELDS = {
    ("constraint", "MaxNorm"): ["axis"],
    ("constraint", "UnitNorm"): ["axis"],
    ("constraint", "MinMaxNorm"): ["axis"],
}
AXES_FIELDS = {
    ("initializer", name): ["input_axes", "output_axes"]
    for name in ("VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform",
                 "LecunNormal")
}
# Keras reads None as the default only for the regularizers' factors.
NONE_IS_DEFAULT = {("regularizer", "L1"), ("regularizer", "L2"), ("regularizer", "L1L2"),
                   ("regularizer", "OrthogonalRegularizer")}

BAD_NUMBERS = ["x", "2", [1, 2], (1.0,), {"a": 1}, True, False, NAN, INF, -INF, 10**400, 1 + 2j]
BAD_STRINGS = [3, 1.5, None, True, ["fan_in"], {"a": 1}, "", "FAN_IN", "Rows", "nope"]
BAD_AXIS = ["0", 1.5, True, [0, "1"], [0.5], [True], {"a": 1}, NAN, (None,)]
BAD_AXES = BAD_AXIS[:-1] + [0, -1]  # Keras 3 iterates over input_axes: a bare int fails there


def _argument(kind):
    """The constructor argument a test passes a ``kind`` through (one per kind)."""
    return {"initializer": "recurrent_initializer", "regularizer": "bias_regularizer",
            "constraint": "kernel_constraint"}[kind]


def _bad_field_cases():
    table = [(NUMBER_FIELDS, BAD_NUMBERS), (STRING_FIELDS, BAD_STRINGS), (AXIS_FIELDS, BAD_AXIS),
             (AXES_FIELDS, BAD_AXES)]
    for fields, bad_values in table:
        for (kind, class_name), names in fields.items():
            for name in names:
                values = bad_values + ([None] if fields is NUMBER_FIELDS and (kind, class_name) not in NONE_IS_DEFAULT
                                       else [])
                for value in values:
                    yield pytest.param(kind, class_name, name, value, id=f"{class_name}.{name}={value!r}"[:60])


@pytest.mark.parametrize("kind,class_name,field,value", list(_bad_field_cases()))
def test_bad_field_value_is_rejected_naming_argument_and_field(kind, class_name, field, value):
    argument = _argument(kind)
    with pytest.raises(ValueError, match=rf"^{argument}: bad config for {kind} {class_name}: {field}: expected "):
        jaxgru.GRUCell(UNITS, **{argument: {"class_name": class_name, "config": {field: value}}})


def test_every_field_is_covered():
    declared = {}
    for table in (NUMBER_FIELDS, STRING_FIELDS, AXIS_FIELDS, AXES_FIELDS):
        for key, names in table.items():
            declared.setdefault(key, set()).update(names)
    for kind, module in MODULES.items():
        for class_name, factory in module.REGISTRY.items():
            assert set(inspect.signature(factory).parameters) == declared.get((kind, class_name), set()), class_name


@pytest.mark.parametrize("argument", sorted(ARGUMENTS))
@pytest.mark.parametrize("identifier,match", [
    ({"class_name": ["GlorotUniform"]}, "'class_name' must be a string, got \\['GlorotUniform'\\]"),
    ({"class_name": None}, "'class_name' must be a string, got None"),
    ({"class_name": 3, "config": {}}, "'class_name' must be a string"),
    ({"class_name": {"a": 1}}, "'class_name' must be a string"),
    ({"config": {}}, "needs a 'class_name' key"),
    ({"class_name": "CLASS", "config": [1, 2]}, "'config' must be a dict or None, got \\[1, 2\\]"),
    ({"class_name": "CLASS", "config": "x"}, "'config' must be a dict or None, got 'x'"),
    ({"class_name": "CLASS", "config": 0}, "'config' must be a dict or None"),
    ({"class_name": "CLASS", "conifg": {}}, "got also \\['conifg'\\]"),
    ({"class_name": "CLASS", "config": {1: 2}}, "unknown key 1"),
    ({"class_name": "Nope"}, "unknown"),
])
def test_malformed_config_dict_is_rejected_naming_argument(argument, identifier, match):
    valid_class = {"initializer": "Zeros", "regularizer": "L2", "constraint": "NonNeg"}[ARGUMENTS[argument]]
    identifier = {k: valid_class if v == "CLASS" else v for k, v in identifier.items()}
    with pytest.raises(ValueError, match=rf"^{argument}: .*{match}"):
        jaxgru.GRUCell(UNITS, **{argument: identifier})


@pytest.mark.parametrize("argument", sorted(ARGUMENTS))
@pytest.mark.parametrize("identifier", [1.0, 0, [1], ("l2",), b"zeros"])
def test_identifier_of_the_wrong_type_is_a_type_error(argument, identifier):
    with pytest.raises(TypeError, match=rf"^{argument}: expected None, a Keras name"):
        jaxgru.GRUCell(UNITS, **{argument: identifier})


def test_stored_configs_hash_jit_and_round_trip():
    """Lists and numpy numbers are stored as tuples and Python floats: the cell hashes."""
    cell = jaxgru.GRUCell(
        UNITS, kernel_constraint={"class_name": "MaxNorm", "config": {"max_value": np.float32(0.5), "axis": [0, 1]}},
        recurrent_initializer={"class_name": "GlorotUniform", "config": {"input_axes": [0], "output_axes": [1]}},
        bias_regularizer={"class_name": "L1L2", "config": {"l1": np.int64(1), "l2": None}})
    config = dict(cell.kernel_constraint.config)
    assert config == {"max_value": 0.5, "axis": (0, 1)} and type(config["max_value"]) is float
    assert dict(cell.bias_regularizer.config) == {"l1": 1.0, "l2": 0.0}
    again = jaxgru.GRUCell.from_config(json.loads(json.dumps(cell.get_config())))
    assert again == cell and hash(again) == hash(cell)
    params = cell.init(jax.random.key(0), INPUT_DIM)
    out = jax.jit(lambda c, p: c.constrain(p)["kernel"], static_argnums=0)(cell, params)
    assert np.all(np.isfinite(out))


# ---------------------------------------------------------------- constraints vs Keras
def _weights(seed=0):
    """A GRU's weights with an all-zero column and an all-zero row in each."""
    params = random_params(jaxgru.GRUCell(UNITS), INPUT_DIM, seed, scale=0.8)
    for w in params.values():
        w[:, 1] = 0.0
        w[1, :] = 0.0
    return params


MATCHED_CONSTRAINTS = [
    ("MaxNorm", {"max_value": 0}),
    ("MaxNorm", {"max_value": 0.5, "axis": None}),
    ("MaxNorm", {"max_value": 0.5, "axis": []}),
    ("MaxNorm", {"max_value": 0.5, "axis": [1, 0]}),
    ("MaxNorm", {"max_value": 0.5, "axis": -2}),
    ("MaxNorm", {"max_value": 0.5, "axis": 1}),
    ("UnitNorm", {"axis": 0}),
    ("UnitNorm", {"axis": None}),
    ("NonNeg", {}),
    ("MinMaxNorm", {"min_value": -1.0, "max_value": 0.5}),
    ("MinMaxNorm", {"min_value": 0.0, "max_value": 0.0}),
    ("MinMaxNorm", {"min_value": 0.7, "max_value": 0.7, "axis": 1}),
    ("MinMaxNorm", {"min_value": 0.3, "max_value": 0.6, "rate": 0.0}),
    ("MinMaxNorm", {"min_value": 0.3, "max_value": 0.6, "rate": 2.0}),
    ("MinMaxNorm", {"min_value": 0.3, "max_value": 0.6, "rate": -1.0, "axis": [0, 1]}),
]


@HEAVY
@pytest.mark.parametrize("class_name,config", MATCHED_CONSTRAINTS, ids=str)
def test_edge_constraints_equal_tf_keras_and_keras_3(class_name, config):
    identifier = {"class_name": class_name, "config": config}
    cell = jaxgru.GRUCell(UNITS, kernel_constraint=identifier, recurrent_constraint=identifier,
                          bias_constraint=identifier)
    params = _weights()
    ours = cell.constrain(params)
    references = (getattr(tf_keras.constraints, class_name)(**config),
                  getattr(keras3.constraints, class_name)(**config))
    for name, w in params.items():
        for reference, weight in zip(references, (tf.constant(w), keras3.ops.convert_to_tensor(w)), strict=True):
            expected = np.asarray(keras3.ops.convert_to_numpy(reference(weight)))
            np.testing.assert_allclose(ours[name], expected, rtol=1e-6, atol=1e-7, err_msg=f"{name} {reference}")


REJECTED_CONSTRAINTS = [
    ("MaxNorm", {"max_value": -1}, r"max_value: expected a finite number >= 0, got -1"),
    ("MaxNorm", {"max_value": INF}, r"max_value: expected a finite number >= 0, got inf"),
    ("MinMaxNorm", {"min_value": 2.0, "max_value": 1.0}, r"min_value \(2\) must be <= max_value \(1\)"),
    ("MinMaxNorm", {"min_value": 0.0, "max_value": -1.0}, r"max_value: expected a finite number >= 0"),
    ("MinMaxNorm", {"min_value": -2.0, "max_value": -1.0}, r"max_value: expected a finite number >= 0"),
    ("MinMaxNorm", {"rate": NAN}, r"rate: expected a finite number, got nan"),
]


@pytest.mark.parametrize("argument", ["kernel_constraint", "recurrent_constraint", "bias_constraint"])
@pytest.mark.parametrize("class_name,config,match", REJECTED_CONSTRAINTS, ids=str)
def test_rejected_constraint_values_raise_at_construction(argument, class_name, config, match):
    with pytest.raises(ValueError, match=rf"^{argument}: bad config for constraint {class_name}: {match}"):
        jaxgru.GRUCell(UNITS, **{argument: {"class_name": class_name, "config": config}})


@HEAVY
@pytest.mark.parametrize("config", [{"axis": 2}, {"axis": -3}, {"axis": [0, -2]}, {"axis": [0, 0]}], ids=str)
def test_axis_beyond_the_weight_fails_when_applied_like_keras(config):
    cell = jaxgru.GRUCell(UNITS, recurrent_constraint={"class_name": "MaxNorm", "config": config})
    w = _weights()["recurrent_kernel"]
    with pytest.raises(ValueError, match=r"^recurrent_constraint: axis .*(out of range|repeats)"):
        jax.jit(cell.constrain)(_weights())
    for reference, weight in ((tf_keras.constraints.MaxNorm(**config), tf.constant(w)),
                              (keras3.constraints.MaxNorm(**config), keras3.ops.convert_to_tensor(w))):
        with pytest.raises(Exception):  # noqa: B017 (tf raises InvalidArgumentError)
            reference(weight)


def test_axis_beyond_a_1d_bias_names_the_argument():
    cell = jaxgru.GRUCell(UNITS, reset_after=False, bias_constraint={"class_name": "UnitNorm", "config": {"axis": 1}})
    params = cell.init(jax.random.key(0), INPUT_DIM)
    with pytest.raises(ValueError, match=r"^bias_constraint: axis 1 is out of range for a 1-D weight"):
        cell.constrain(params)


@HEAVY
def test_rejected_values_are_ones_where_keras_backends_disagree():
    """tf_keras against Keras 3 on JAX."""
    w = _weights()["kernel"]
    u = keras3.initializers.RandomUniform(1.0, -1.0, seed=1)((1000,))
    keras_jax = {"max_norm": np.asarray(keras3.constraints.MaxNorm(-1.0)(w)),
                 "min_max_norm": np.asarray(keras3.constraints.MinMaxNorm(2.0, 1.0)(w)),
                 "uniform": [float(np.min(u)), float(np.max(u))]}
    tf_max_norm = tf_keras.constraints.MaxNorm(-1.0)(tf.constant(w)).numpy()
    tf_min_max = tf_keras.constraints.MinMaxNorm(2.0, 1.0)(tf.constant(w)).numpy()
    tf_uniform = tf_keras.initializers.RandomUniform(1.0, -1.0, seed=1)((1000,)).numpy()
    np.testing.assert_array_equal(tf_max_norm, 0)  # zeros ...
    assert np.any(np.asarray(keras_jax["max_norm"]) < 0)  # ... against flipped columns
    norms = lambda x: np.linalg.norm(np.asarray(x), axis=0)[np.linalg.norm(w, axis=0) > 0]
    np.testing.assert_allclose(norms(tf_min_max), 2.0, rtol=1e-5)  # clipped to min_value ...
    np.testing.assert_allclose(norms(keras_jax["min_max_norm"]), 1.0, rtol=1e-5)  # ... against max_value
    assert tf_uniform.min() < -0.9 and tf_uniform.max() > 0.9  # spread over [-1, 1] ...
    assert keras_jax["uniform"] == [1.0, 1.0]  # ... against constant minval


# ---------------------------------------------------------------- regularizers vs Keras
@HEAVY
@pytest.mark.parametrize("class_name,config", [
    ("L1", {"l1": None}), ("L2", {"l2": None}), ("L1L2", {"l1": None, "l2": None}), ("L1L2", {"l1": 0, "l2": 0.5}),
    ("OrthogonalRegularizer", {"factor": 0.0}), ("OrthogonalRegularizer", {"factor": 2.0, "mode": "columns"}),
], ids=str)
def test_edge_regularizers_equal_tf_keras_and_keras_3(class_name, config):
    cell = jaxgru.GRUCell(UNITS, kernel_regularizer={"class_name": class_name, "config": config})
    params = _weights(1)
    ours = float(cell.penalty(params))
    for module in (tf_keras.regularizers, keras3.regularizers):
        weight = (tf.constant if module is tf_keras.regularizers else keras3.ops.convert_to_tensor)(params["kernel"])
        expected = float(np.asarray(getattr(module, class_name)(**config)(weight)))
        np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-8, err_msg=str(module))


@HEAVY
@pytest.mark.parametrize("class_name,field", [("L1", "l1"), ("L2", "l2"), ("L1L2", "l2"),
                                               ("OrthogonalRegularizer", "factor")])
def test_negative_factor_is_rejected_where_tf_keras_and_keras_3_disagree(class_name, field):
    getattr(tf_keras.regularizers, class_name)(**{field: -0.1})  # tf_keras accepts it
    with pytest.raises(ValueError, match="non-negative"):
        getattr(keras3.regularizers, class_name)(**{field: -0.1})  # Keras 3 does not
    with pytest.raises(ValueError, match=rf"^recurrent_regularizer: bad config .*{field}: expected a finite number >= 0"):
        jaxgru.GRUCell(UNITS, recurrent_regularizer={"class_name": class_name, "config": {field: -0.1}})


# ---------------------------------------------------------------- initializers vs Keras
DETERMINISTIC_EDGES = [
    ("Constant", {"value": -2.5}),
    ("Identity", {"gain": -2.0}),  # rectangular (3, 12)
    ("Identity", {"gain": 0.0}),
    ("Orthogonal", {"gain": 0.0}),
    ("RandomUniform", {"minval": 0.3, "maxval": 0.3}),
    ("RandomNormal", {"mean": 0.2, "stddev": 0.0}),
    ("TruncatedNormal", {"mean": -0.2, "stddev": 0.0}),
]


@HEAVY
@pytest.mark.parametrize("class_name,config", DETERMINISTIC_EDGES, ids=str)
def test_deterministic_edge_initializers_equal_tf_keras_and_keras_3(class_name, config):
    cell = jaxgru.GRUCell(UNITS, kernel_initializer={"class_name": class_name, "config": config})
    ours = np.asarray(cell.init(jax.random.key(0), INPUT_DIM)["kernel"])
    shape = (INPUT_DIM, 3 * UNITS)
    for module in (tf_keras.initializers, keras3.initializers):
        expected = np.asarray(keras3.ops.convert_to_numpy(getattr(module, class_name)(**config)(shape)))
        np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-7, err_msg=str(module))


@HEAVY
@pytest.mark.parametrize("class_name", ["RandomNormal", "TruncatedNormal"])
def test_negative_stddev_draws_like_keras(class_name):
    config = {"mean": 0.5, "stddev": -2.0}
    shape = (60, 150)
    cell = jaxgru.GRUCell(50, kernel_initializer={"class_name": class_name, "config": config})
    ours = np.asarray(cell.init(jax.random.key(0), shape[0])["kernel"])
    theirs = getattr(tf_keras.initializers, class_name)(**config, seed=3)(shape).numpy()
    np.testing.assert_allclose([ours.mean(), ours.std()], [theirs.mean(), theirs.std()], atol=0.05)
    if class_name == "TruncatedNormal":  # cut at two |stddev| from the mean, as in Keras
        for sample in (ours, theirs):
            assert -3.5 <= sample.min() < -3.4 and 4.4 < sample.max() <= 4.5


@HEAVY
@pytest.mark.parametrize("distribution", ["normal", "NORMAL", "Uniform", "untruncated_normal"])
def test_distribution_is_read_as_keras_reads_it(distribution):
    cell = jaxgru.GRUCell(UNITS, kernel_initializer={"class_name": "VarianceScaling",
                                                     "config": {"distribution": distribution}})
    for module in (tf_keras.initializers, keras3.initializers):
        expected = module.VarianceScaling(distribution=distribution).get_config()["distribution"]
        assert dict(cell.kernel_initializer.config)["distribution"] == expected


@HEAVY
def test_overlapping_keras_3_axes_give_keras_3_fans():
    config = {"scale": 1.0, "mode": "fan_out", "distribution": "untruncated_normal", "input_axes": [0],
              "output_axes": [0, 0]}  # fan_out = 60 * 60
    cell = jaxgru.GRUCell(50, kernel_initializer={"class_name": "VarianceScaling", "config": config})
    ours = np.asarray(cell.init(jax.random.key(0), 60)["kernel"])
    theirs = np.asarray(keras3.initializers.VarianceScaling(**config, seed=1)((60, 150)))
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.05)
    np.testing.assert_allclose(ours.std(), 1 / 60, rtol=0.05)


@pytest.mark.parametrize("class_name,config,match", [
    ("RandomUniform", {"minval": 1.0, "maxval": -1.0}, r"minval \(1\) must be <= maxval \(-1\)"),
    ("Constant", {"value": [1.0, 2.0, 3.0]}, "value: expected a finite scalar"),
    ("Constant", {"value": {"class_name": "__numpy__", "config": {"value": [1.0], "dtype": "float32"}}},
     "value: expected a finite scalar"),
    ("VarianceScaling", {"scale": 0.0}, "scale: expected a finite number > 0"),
    ("VarianceScaling", {"scale": NAN}, "scale: expected a finite number > 0"),
    ("Orthogonal", {"gain": INF}, "gain: expected a finite number"),
])
def test_rejected_initializer_values_raise_at_construction(class_name, config, match):
    with pytest.raises(ValueError, match=rf"^bias_initializer: bad config for initializer {class_name}: {match}"):
        jaxgru.GRUCell(UNITS, bias_initializer={"class_name": class_name, "config": config})


@pytest.mark.parametrize("identifier,match", [
    ("orthogonal", "Orthogonal needs a weight of 2 or more dimensions"),
    ("identity", "Identity needs a 2-D weight"),
    ({"class_name": "HeNormal", "config": {"input_axes": [1], "output_axes": [0]}}, "input_axes 1 is out of range"),
])
def test_shape_errors_at_init_name_the_argument(identifier, match):
    cell = jaxgru.GRUCell(UNITS, reset_after=False, bias_initializer=identifier)  # a (3U,) bias
    with pytest.raises(ValueError, match=rf"^bias_initializer: {match}"):
        cell.init(jax.random.key(0), INPUT_DIM)


# ---------------------------------------------------------------- property test
# Finite magnitudes stay within 1e6: far beyond it, float32 weights overflow in Keras too.
_STRINGS = ["fan_in", "fan_out", "fan_avg", "normal", "uniform", "truncated_normal", "untruncated_normal", "rows",
            "columns", "FAN_IN", "Normal"]
_NUMBERS = st.one_of(st.integers(-3, 3), st.floats(-1e6, 1e6), st.sampled_from([NAN, INF, -INF, 0.0, -0.0, 10**400]))
_SCALARS = st.one_of(_NUMBERS, _NUMBERS, st.booleans(), st.none(), st.text(max_size=4), st.sampled_from(_STRINGS))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(st.text(max_size=3), inner, max_size=2)),
                       max_leaves=4)
# Values of the right shape for each kind of field, so that many configs are valid.
_PLAUSIBLE = {
    "number": st.one_of(st.floats(-10, 10), st.integers(-3, 3)),
    "string": st.sampled_from(_STRINGS),
    "axis": st.one_of(st.integers(-3, 2), st.lists(st.integers(-3, 2), max_size=3), st.none()),
    "axes": st.one_of(st.lists(st.integers(-3, 2), max_size=2), st.none()),
}
_FIELDS_OF = {}  # (kind, class_name) -> {field: what it holds}
for _table, _holds in ((NUMBER_FIELDS, "number"), (STRING_FIELDS, "string"), (AXIS_FIELDS, "axis"),
                       (AXES_FIELDS, "axes")):
    for _key, _names in _table.items():
        _FIELDS_OF.setdefault(_key, {}).update(dict.fromkeys(_names, _holds))
_FIELD_NAMES = sorted({name for fields in _FIELDS_OF.values() for name in fields} | {"seed"})


_rarely = st.sampled_from([False] * 5 + [True])  # True about one draw in six


@st.composite
def _config(draw, kind, class_name):
    """A config for ``class_name``: mostly its own fields with plausible values, or anything."""
    fields = _FIELDS_OF.get((kind, class_name), {})
    if not fields or draw(_rarely):
        keys = st.one_of(st.sampled_from(_FIELD_NAMES), st.text(max_size=4))
        return draw(st.one_of(st.none(), st.dictionaries(keys, _VALUES, max_size=4), _VALUES))
    names = draw(st.lists(st.sampled_from(sorted(fields)), max_size=len(fields), unique=True))
    return {name: draw(_VALUES if draw(_rarely) else _PLAUSIBLE[fields[name]]) for name in names}


@st.composite
def _identifiers(draw, kind):
    """A Keras-like identifier of ``kind``: mostly config dicts, of valid and invalid parts."""
    module = MODULES[kind]
    valid = st.sampled_from(sorted(module.REGISTRY) + sorted(module.NAMES)[:8])
    names = st.one_of(valid, valid, valid, valid, st.sampled_from(["Nope", "", "l3"]))
    if draw(_rarely):
        return draw(st.one_of(names, st.none(), _VALUES))
    class_name = draw(_VALUES if draw(_rarely) else names)
    resolved = module.NAMES.get(class_name, (class_name, {}))[0] if isinstance(class_name, str) else None
    identifier = {"class_name": class_name, "config": draw(_config(kind, resolved))}
    extra = draw(st.sampled_from([{}] * 5 + [{"module": "keras.constraints", "registered_name": None}] * 2 + [{"x": 1}]))
    dropped = draw(st.sampled_from([()] * 7 + [("config",), ("class_name",)]))
    return {k: v for k, v in {**identifier, **extra}.items() if k not in dropped}


# One to three arguments (one half of the time, since each is rejected fairly often).
_ARGUMENT_LISTS = st.sampled_from([1, 1, 2, 3]).flatmap(
    lambda n: st.lists(st.sampled_from(sorted(ARGUMENTS)), min_size=n, max_size=n, unique=True))
_CHOSEN = _ARGUMENT_LISTS.flatmap(lambda args: st.fixed_dictionaries({a: _identifiers(ARGUMENTS[a]) for a in args}))


def _all_finite(tree) -> bool:
    return all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(tree))


_use = jax.jit(lambda cell, params: (cell.penalty(params), cell.constrain(params)), static_argnums=0)


def _construct(chosen):
    """GRUCell(UNITS, **chosen), or the error, which must start with the name of an argument."""
    try:
        return jaxgru.GRUCell(UNITS, **chosen), None
    except (TypeError, ValueError) as e:
        assert re.match(rf"^({'|'.join(chosen)}): ", str(e)), e
        return None, e


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(chosen=_CHOSEN)
@example(chosen={"bias_initializer": {"class_name": "Constant", "config": {"value": [1, 2, 3]}}})
@example(chosen={"kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": {"a": 1}}}})
@example(chosen={"recurrent_initializer": {"class_name": ["GlorotUniform"]}})
@example(chosen={"kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 0, "axis": [0, 1]}},
                 "recurrent_regularizer": {"class_name": "L1L2", "config": {"l1": None}},
                 "bias_initializer": {"class_name": "HeUniform", "config": {"input_axes": [1], "output_axes": [-1]}}})
@example(chosen={"bias_constraint": {"class_name": "UnitNorm", "config": {"axis": [2]}}})
def test_random_configs_fail_cleanly_or_give_a_usable_cell(chosen):
    # Each argument alone decides whether it is accepted; together they fail iff one does.
    alone = {argument: _construct({argument: identifier})[1] for argument, identifier in chosen.items()}
    cell, error = _construct(chosen)
    if any(alone.values()):
        event("rejected at construction")
        assert error is not None and str(error).split(":")[0] in {a for a, e in alone.items() if e}
        return
    assert error is None
    again = jaxgru.GRUCell.from_config(json.loads(json.dumps(cell.get_config())))
    assert again == cell and hash(again) == hash(cell)
    try:
        params = cell.init(jax.random.key(0), INPUT_DIM)
        penalty, constrained = _use(cell, params)
    except ValueError as e:  # only an axis beyond a weight's rank is left to the call
        assert re.match(rf"^({'|'.join(chosen)}): .*ax[ie]s", str(e)), e
        event("axis beyond a weight's rank, raised when used")
        return
    event("accepted and used")
    assert _all_finite(params) and _all_finite(penalty) and _all_finite(constrained), chosen
    assert penalty.shape == () and jax.tree.map(jnp.shape, constrained) == jax.tree.map(jnp.shape, params)
