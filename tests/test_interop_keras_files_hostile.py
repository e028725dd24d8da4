"""load_keras_weights on hostile files: data from outside the file, sizes that would exhaust
memory, and malformed structures, each refused with a ValueError naming the file and object."""

import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
import zlib

import h5py
import numpy as np
import pytest
from references import HEAVY
from references import keras as tf_keras

import jaxgru

pytestmark = HEAVY  # every test here runs TensorFlow

KERNEL = {"h5": "model_weights/gru/gru/gru_cell/kernel:0", "weights.h5": "layers/gru/cell/vars/0"}
SECRET = np.arange(36, dtype=np.float32).reshape(3, 12) + 1000  # shaped like the model's kernel
MEMBER = "model.weights.h5"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{"h5" | "weights.h5" | "keras": path} of one tf_keras GRU(4) model, plus its "kernel"."""
    folder = tmp_path_factory.mktemp("saved")
    model = tf_keras.Sequential([tf_keras.Input((5, 3)), tf_keras.layers.GRU(4, name="gru")])
    files = {"h5": folder / "model.h5", "weights.h5": folder / "model.weights.h5", "keras": folder / "model.keras"}
    model.save(str(files["h5"]))
    model.save_weights(str(files["weights.h5"]))
    model.save(str(files["keras"]))
    return {**files, "kernel": model.layers[0].get_weights()[0]}


@pytest.fixture(scope="module")
def secrets(saved, tmp_path_factory):
    """Files a hostile weights file points at: raw bytes, a dataset, and copies of the
    model's files holding SECRET as the kernel."""
    folder = tmp_path_factory.mktemp("secret")
    (folder / "secret.bin").write_bytes(SECRET.tobytes())
    with h5py.File(folder / "secret-data.h5", "w") as file:
        file["data"] = SECRET
    for fmt in ("h5", "weights.h5"):
        shutil.copy(saved[fmt], folder / f"secret-model.{fmt}")
        with h5py.File(folder / f"secret-model.{fmt}", "r+") as file:
            file[KERNEL[fmt]][...] = SECRET
    return folder


def edited(saved, tmp_path, fmt, edit, name="hostile"):
    """A copy of the saved ``fmt`` file changed by ``edit(h5py_file)``; for "keras", a copy
    of the .keras zip whose model.weights.h5 is changed. Returns (path, edited HDF5 path)."""
    h5_path = tmp_path / f"{name}.{'weights.h5' if fmt == 'keras' else fmt}"
    if fmt == "keras":
        with zipfile.ZipFile(saved["keras"]) as archive:
            h5_path.write_bytes(archive.read(MEMBER))
    else:
        shutil.copy(saved[fmt], h5_path)
    with h5py.File(h5_path, "r+") as file:
        edit(file)
    if fmt != "keras":
        return h5_path, h5_path
    path = tmp_path / f"{name}.keras"
    rezip(saved["keras"], path, {MEMBER: h5_path.read_bytes()})
    return path, h5_path


def rezip(source, path, replace, compression=zipfile.ZIP_STORED):
    """``source``'s entries, with those named in ``replace`` replaced by its bytes."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w", compression) as new:
        for info in old.infolist():
            new.writestr(info.filename, replace.get(info.filename, old.read(info)))


def refusal(path, *fragments):
    """The ValueError that loading ``path`` raises, checked to name the file and ``fragments``."""
    with pytest.raises(ValueError) as info:
        jaxgru.load_keras_weights(path)
    message = str(info.value)
    for fragment in (str(path), *fragments):
        assert fragment in message
    return message


def replace_dataset(file, name, **create):
    del file[name]
    return file.create_dataset(name, **create)


def replace_link(file, name, link):
    del file[name]
    file[name] = link


# ------------------------------------------------------------------ 1. data from outside the file
# Each edit(file, kernel, secret folder) points the file, at or above its kernel dataset, elsewhere.
def _external_storage(file, kernel, secret):
    replace_dataset(file, kernel, shape=(3, 12), dtype="f4",
                    external=[(str(secret / "secret.bin"), 0, SECRET.nbytes)])


def _external_link_to_layer(file, kernel, secret):
    replace_link(file, "model_weights/gru", h5py.ExternalLink(str(secret / "secret-model.h5"), "/model_weights/gru"))


def _external_link_to_dataset(file, kernel, secret):
    replace_link(file, kernel, h5py.ExternalLink(str(secret / "secret-data.h5"), "data"))


def _external_link_on_the_walk(file, kernel, secret):
    replace_link(file, "layers/gru", h5py.ExternalLink(str(secret / "secret-model.weights.h5"), "/layers/gru"))


def _soft_link_out_of_the_layer(file, kernel, secret):
    file["stolen"] = SECRET
    replace_link(file, kernel, h5py.SoftLink("/stolen"))


def _soft_link_loop(file, kernel, secret):
    replace_link(file, kernel, h5py.SoftLink("/" + kernel))


def _virtual_dataset(file, kernel, secret):
    layout = h5py.VirtualLayout((3, 12), "f4")
    layout[...] = h5py.VirtualSource(str(secret / "secret-data.h5"), "data", (3, 12))
    del file[kernel]
    file.create_virtual_dataset(kernel, layout)


def _plugin_filter(file, kernel, secret):
    replace_dataset(file, kernel, data=SECRET, chunks=(3, 12), compression=32004, allow_unknown_filter=True)


OUTSIDE = {  # case: (format, edit, object named (None: the kernel), problem named, plain h5py reads SECRET)
    "external storage": ("weights.h5", _external_storage, None, "uses external storage", True),
    "external storage (legacy)": ("h5", _external_storage, None, "uses external storage", True),
    "external storage (.keras)": ("keras", _external_storage, None, "uses external storage", True),
    "external link to a layer": ("h5", _external_link_to_layer, "model_weights/gru", "is an external link", True),
    "external link to a dataset": ("weights.h5", _external_link_to_dataset, None, "is an external link", True),
    "external link on the walk": ("keras", _external_link_on_the_walk, "layers/gru", "is an external link", True),
    "soft link out of the layer": ("h5", _soft_link_out_of_the_layer, None, "outside the group", True),
    "soft link loop": ("weights.h5", _soft_link_loop, None, "follows more than 16 soft links", False),
    "virtual dataset": ("weights.h5", _virtual_dataset, None, "is a virtual dataset", True),
    "plugin filter": ("h5", _plugin_filter, None, "uses HDF5 filter 32004", False),
}


@pytest.mark.parametrize("case", OUTSIDE)
def test_refuses_data_from_outside_the_file(saved, secrets, tmp_path, case):
    fmt, edit, obj, problem, leaks = OUTSIDE[case]
    kernel = KERNEL["h5" if fmt == "h5" else "weights.h5"]
    path, h5_path = edited(saved, tmp_path, fmt, lambda file: edit(file, kernel, secrets))
    if leaks:  # the hostile file does lead plain h5py to the secret
        with h5py.File(h5_path, "r") as file:
            np.testing.assert_array_equal(file[kernel][()], SECRET)
    refusal(path, repr(obj or kernel), problem)  # an error, so none of the secret is returned


# ------------------------------------------------------------------ 2. memory
CHILD = """
import json, os, resource, sys
import h5py, jaxgru

def address_space():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")

limit = address_space() + (128 << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    bytearray(192 << 20)  # the smallest allocation a hostile case below would need
    print(json.dumps(["limit binds", False]))
except MemoryError:
    print(json.dumps(["limit binds", True]))
for case, path in json.loads(sys.argv[1]).items():
    try:
        result = "ok " + " ".join(sorted(jaxgru.load_keras_weights(path)))
    except Exception as error:
        result = f"{type(error).__name__}: {error}"
    print(json.dumps([case, result]), flush=True)
"""
HUGE = {"shape": (1 << 26, 12), "dtype": "f4", "chunks": (1 << 16, 12), "compression": "gzip"}  # 3 GiB of zeros


def zip_bomb(path, megabytes):
    """A .keras whose model.weights.h5 inflates to ``megabytes`` MiB of zeros, written in chunks."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        with archive.open(MEMBER, "w") as member:
            for _ in range(megabytes):
                member.write(bytes(1 << 20))


def set_declared_size(path, name, size):
    """Rewrites the uncompressed size that the central directory declares for entry ``name``."""
    data = bytearray(path.read_bytes())
    start = data.find(b"PK\x01\x02")
    while start >= 0:
        name_length = struct.unpack_from("<H", data, start + 28)[0]
        if data[start + 46:start + 46 + name_length] == name.encode():
            struct.pack_into("<I", data, start + 24, size)
        start = data.find(b"PK\x01\x02", start + 46)
    path.write_bytes(bytes(data))


def big_chunk(file):
    """A kernel of 3 x 12 floats stored in one chunk of 192 MiB of deflated zeros (HDF5 inflates
    chunks whole); the chunk is deflated piecewise, so building it stays small in memory."""
    rows = 1 << 22
    dataset = replace_dataset(file, KERNEL["weights.h5"], shape=(3, 12), dtype="f4", maxshape=(None, 12),
                              chunks=(rows, 12), compression="gzip")
    compressor = zlib.compressobj()
    chunk = b"".join(compressor.compress(bytes(1 << 20)) for _ in range(rows * 12 * 4 >> 20)) + compressor.flush()
    dataset.id.write_direct_chunk((0, 0), chunk)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="address-space limit via /proc and RLIMIT_AS")
def test_memory_stays_bounded(saved, tmp_path):
    zip_bomb(tmp_path / "bomb.keras", 256)
    shutil.copy(tmp_path / "bomb.keras", tmp_path / "lying-bomb.keras")
    set_declared_size(tmp_path / "lying-bomb.keras", MEMBER, 1 << 20)
    os.mkfifo(tmp_path / "fifo")
    cases = {
        "legit .keras": saved["keras"], "legit .h5": saved["h5"], "legit .weights.h5": saved["weights.h5"],
        "zip bomb": tmp_path / "bomb.keras", "zip bomb declaring 1 MiB": tmp_path / "lying-bomb.keras",
        "huge dataset": edited(saved, tmp_path, "weights.h5", lambda f: replace_dataset(
            f, KERNEL["weights.h5"], **HUGE), "huge")[0],
        "huge dataset (legacy)": edited(saved, tmp_path, "h5", lambda f: replace_dataset(
            f, KERNEL["h5"], **HUGE), "huge")[0],
        "huge dataset (.keras)": edited(saved, tmp_path, "keras", lambda f: replace_dataset(
            f, KERNEL["weights.h5"], **HUGE), "huge-keras")[0],
        "huge chunk": edited(saved, tmp_path, "weights.h5", big_chunk, "chunk")[0],
        "/dev/zero": "/dev/zero", "FIFO": tmp_path / "fifo",
    }
    assert max(os.path.getsize(p) for p in cases.values() if os.path.isfile(p)) < 1 << 20  # all small files
    (tmp_path / "tmp").mkdir()  # the child's temporary folder, for .keras members
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps({k: str(v) for k, v in cases.items()})],
                           check=False, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    assert child.returncode == 0, child.stderr[-3000:]
    assert not list((tmp_path / "tmp").iterdir())  # extracted members are deleted, also after errors
    results = dict(json.loads(line) for line in child.stdout.splitlines() if line.startswith("["))
    assert results.pop("limit binds") is True  # 192 MiB does not fit: the limit is what each case would hit
    expected = {
        "legit .keras": "ok gru", "legit .h5": "ok gru", "legit .weights.h5": "ok gru",
        "zip bomb": f"the zip entry '{MEMBER}' declares 268435456 bytes",
        "zip bomb declaring 1 MiB": f"the zip entry '{MEMBER}' is corrupt",
        "huge dataset": f"'{KERNEL['weights.h5']}' would take 3221225472 bytes to read",
        "huge dataset (legacy)": f"'{KERNEL['h5']}' would take 3221225472 bytes to read",
        "huge dataset (.keras)": f"'{KERNEL['weights.h5']}' would take 3221225472 bytes to read",
        "huge chunk": f"'{KERNEL['weights.h5']}' would take 201326592 bytes to read",
        "/dev/zero": "a character device, not a regular file", "FIFO": "a FIFO, not a regular file",
    }
    for case, fragment in expected.items():
        result = results[case]
        assert fragment in result, (case, result)
        assert result.startswith(("ok", f"ValueError: {cases[case]}")), (case, result)


# ------------------------------------------------------------------ 3. errors that name the file and object
def _bad_crc(saved, path):
    """A byte of the stored model.weights.h5 flipped."""
    data = bytearray(saved["keras"].read_bytes())
    with zipfile.ZipFile(saved["keras"]) as archive:
        offset = archive.getinfo(MEMBER).header_offset
    name_length, extra_length = struct.unpack_from("<HH", data, offset + 26)
    data[offset + 30 + name_length + extra_length + 100] ^= 0xFF
    path.write_bytes(bytes(data))


def _declaring(extra):
    """The .keras with its model.weights.h5 declaring ``extra`` more bytes than it holds."""
    def build(saved, path):
        shutil.copy(saved["keras"], path)
        with zipfile.ZipFile(path) as archive:
            size = archive.getinfo(MEMBER).file_size
        set_declared_size(path, MEMBER, size + extra)
    return build


def _truncated(saved, path):
    path.write_bytes(saved["keras"].read_bytes()[:5000])


def _with_entry(saved, path, info, data):
    """The .keras with ``info`` holding ``data`` instead of its model.weights.h5."""
    with zipfile.ZipFile(saved["keras"]) as old, zipfile.ZipFile(path, "w") as new:
        for entry in old.infolist():
            if entry.filename != MEMBER:
                new.writestr(entry, old.read(entry))
        new.writestr(info, data)


def _two_entries(saved, path):
    shutil.copy(saved["keras"], path)
    with zipfile.ZipFile(saved["keras"]) as old, zipfile.ZipFile(path, "a") as new, \
            pytest.warns(UserWarning, match="Duplicate name"):
        new.writestr(MEMBER, old.read(MEMBER))


def _link_entry(saved, path):
    info = zipfile.ZipInfo(MEMBER)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    _with_entry(saved, path, info, b"/etc/passwd")


def _directory_entry(saved, path):
    _with_entry(saved, path, zipfile.ZipInfo(MEMBER + "/"), b"")


def _bzip2(saved, path):
    rezip(saved["keras"], path, {}, zipfile.ZIP_BZIP2)


def _huge_directory(saved, path):
    """The end record's central directory size field says 16 MiB."""
    data = bytearray(saved["keras"].read_bytes())
    struct.pack_into("<I", data, data.rfind(b"PK\x05\x06") + 12, 16 << 20)
    path.write_bytes(bytes(data))


ZIP_CASES = {  # case: (build(saved, path), fragments of the error)
    "bad CRC": (_bad_crc, [repr(MEMBER), "is corrupt", "CRC"]),
    "declares less": (_declaring(-1000), [repr(MEMBER), "is corrupt"]),
    "declares more": (_declaring(5000), [repr(MEMBER), "is corrupt", "declares"]),
    "truncated": (_truncated, ["a corrupt zip file"]),
    "two weights entries": (_two_entries, [repr(MEMBER), "appears 2 times"]),
    "symlink entry": (_link_entry, [repr(MEMBER), "not a regular file"]),
    "directory entry": (_directory_entry, [f"without {MEMBER!r}"]),
    "bzip2 entry": (_bzip2, [repr(MEMBER), "compression method 12"]),
    "huge central directory": (_huge_directory, ["central directory declares"]),
}


def _set_attr(name, group, value):
    def edit(file):
        file[group].attrs[name] = value
    return edit


def _group_instead(name):
    def edit(file):
        del file[name]
        file.create_group(name)
    return edit


def _missing_layer(file):
    file["model_weights"].attrs["layer_names"] = np.array([b"gru", b"ghost"])


def _missing_weight(file):
    names = list(file["model_weights/gru"].attrs["weight_names"]) + ["gru/gru_cell/ghost:0"]
    file["model_weights/gru"].attrs["weight_names"] = np.array(names, dtype=h5py.string_dtype())


H5_CASES = {  # case: (format, edit, fragments of the error)
    "layer without group": ("h5", _missing_layer, ["'model_weights/ghost' does not exist"]),
    "weight without dataset": ("h5", _missing_weight, ["'model_weights/gru/gru/gru_cell/ghost:0' does not exist"]),
    "weight that is a group": ("h5", _group_instead(KERNEL["h5"]),
                               [repr(KERNEL["h5"]), "is a Group, expected a Dataset"]),
    "integer layer names": ("h5", _set_attr("layer_names", "model_weights", np.array([1, 2])),
                            ["'model_weights'", "'layer_names'", "not a list of strings"]),
    "nested layer names": ("h5", _set_attr("layer_names", "model_weights", np.array([[b"gru"], [b"gru"]])),
                           ["'model_weights'", "'layer_names'", "not a list of strings"]),
    "undecodable layer name": ("h5", _set_attr("layer_names", "model_weights", np.array([b"\xff\xfe"])),
                               ["'model_weights'", "'layer_names'", "not UTF-8"]),
    "integer weight names": ("h5", _set_attr("weight_names", "model_weights/gru", np.array([3, 4])),
                             ["'model_weights/gru'", "'weight_names'", "not a list of strings"]),
    "absolute weight name": ("h5", _set_attr("weight_names", "model_weights/gru", np.array(
        [b"/model_weights/gru/gru/gru_cell/kernel:0"])), ["not a relative path"]),
    "vars member that is a group": ("weights.h5", _group_instead(KERNEL["weights.h5"]),
                                    [repr(KERNEL["weights.h5"]), "is a Group, expected a Dataset"]),
    "integer name": ("weights.h5", _set_attr("name", "layers/gru/vars", 7),
                     ["'layers/gru/vars'", "'name'", "not a string"]),
    "string weights": ("weights.h5", lambda f: replace_dataset(
        f, KERNEL["weights.h5"], data=np.full((3, 12), "x", dtype="S1")), ["dtype |S1", "floating-point"]),
    "reference weights": ("weights.h5", lambda f: replace_dataset(
        f, KERNEL["weights.h5"], shape=(3, 12), dtype=h5py.ref_dtype), ["dtype object", "floating-point"]),
    "integer weights": ("h5", lambda f: replace_dataset(f, KERNEL["h5"], data=np.ones((3, 12), np.int32)),
                        [repr(KERNEL["h5"]), "dtype int32"]),
    "zero-size kernel": ("h5", lambda f: replace_dataset(f, KERNEL["h5"], shape=(0, 12), dtype="f4"),
                         ["malformed", "got (0, 12)"]),
    "rank-3 bias": ("weights.h5", lambda f: replace_dataset(f, "layers/gru/cell/vars/2", shape=(2, 12, 1),
                                                             dtype="f4"), ["'layers/gru/cell/vars/2'", "rank 1 or 2"]),
    "empty bias": ("weights.h5", lambda f: replace_dataset(f, "layers/gru/cell/vars/2", data=h5py.Empty("f4")),
                   ["'layers/gru/cell/vars/2' has shape None"]),
}


def test_errors_name_the_file_and_the_object(saved, tmp_path):
    missing = tmp_path / "missing.keras"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        jaxgru.load_keras_weights(missing)
    for not_a_path in (5, b"model.h5", None):
        with pytest.raises(TypeError, match="path: expected a str or os.PathLike"):
            jaxgru.load_keras_weights(not_a_path)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(saved["h5"].read_bytes()[:5000])
    refusal(truncated, "truncated file")
    for case, (build, fragments) in ZIP_CASES.items():
        path = tmp_path / f"{case.replace(' ', '-')}.keras"
        build(saved, path)
        refusal(path, *fragments)
    for case, (fmt, edit, fragments) in H5_CASES.items():
        path, _ = edited(saved, tmp_path, fmt, edit, case.replace(" ", "-"))
        refusal(path, *fragments)


# ------------------------------------------------------------------ what stays allowed
def _soft_link_inside(file):
    file.move(KERNEL["h5"], "model_weights/gru/gru/gru_cell/kernel_data")
    file[KERNEL["h5"]] = h5py.SoftLink("kernel_data")


def _hard_link_cycle(file):
    file["layers/gru/cell/loop"] = file["layers"]


def _compressed(file):
    for i, options in enumerate([{"compression": "gzip", "shuffle": True, "fletcher32": True},
                                 {"compression": "lzf"}]):
        name = f"layers/gru/cell/vars/{i}"
        data = file[name][()]
        replace_dataset(file, name, data=data, chunks=data.shape, **options)


def _user_block(saved, path):
    with h5py.File(saved["weights.h5"], "r") as old, h5py.File(path, "w", userblock_size=1024) as new:
        for name in old:
            old.copy(name, new)
    return path


def _deflated(saved, path):
    rezip(saved["keras"], path, {}, zipfile.ZIP_DEFLATED)
    return path


ALLOWED = {
    "soft link inside the layer": lambda saved, tmp: edited(saved, tmp, "h5", _soft_link_inside, "soft")[0],
    "hard link cycle": lambda saved, tmp: edited(saved, tmp, "weights.h5", _hard_link_cycle, "cycle")[0],
    "built-in filters": lambda saved, tmp: edited(saved, tmp, "weights.h5", _compressed, "filters")[0],
    "user block": lambda saved, tmp: _user_block(saved, tmp / "userblock.weights.h5"),
    "deflated .keras": lambda saved, tmp: _deflated(saved, tmp / "deflated.keras"),
}


@pytest.mark.parametrize("case", ALLOWED)
def test_self_contained_variants_still_load(saved, tmp_path, case):
    layers = jaxgru.load_keras_weights(ALLOWED[case](saved, tmp_path))
    assert list(layers) == ["gru"]
    np.testing.assert_array_equal(layers["gru"]["kernel"], saved["kernel"])
