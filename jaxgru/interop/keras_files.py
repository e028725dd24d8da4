"""GRU weights from saved Keras files: legacy ``.h5``, ``.weights.h5`` and ``.keras``.

Keras writes two HDF5 layouts, and this reads both (tf_keras and Keras 3 write them alike):

- legacy (``model.save("m.h5")``, ``model.save_weights("w.h5")``): one group per layer
  listed in the ``layer_names`` attribute (under ``model_weights`` for a full model), each
  listing its ``weight_names`` such as ``"gru/gru_cell/kernel:0"``;
- the saving library's (``*.weights.h5``, and ``model.weights.h5`` inside the ``.keras``
  zip): one group per object, ``layers/<path>/cell/vars/{0,1,2}`` for a GRU's
  ``[kernel, recurrent_kernel, bias]``. Keras 3 records each layer's name in its
  ``vars`` group's ``name`` attribute; tf_keras records no names.

A GRU is any cell whose weights are ``kernel``, ``recurrent_kernel (U, 3U)`` and optional
``bias``, which is what ``GRU``, ``RNN(GRUCell)`` and both directions of
``Bidirectional(GRU)`` save (an LSTM's recurrent kernel is ``(U, 4U)``).

Every file is treated as hostile: it may only describe itself, and sizes it declares
never drive an allocation.

- Self-contained: the reader follows hard links, and soft links whose target lies inside
  the group that holds the link (at most 16 per lookup, as in HDF5); it refuses external
  links, datasets with external storage or a virtual layout, and filters that are not
  built into HDF5 or h5py (plugin filters are code loaded from outside the file). It opens HDF5 with the default
  (``sec2``) driver and only regular files (not a directory, FIFO or device).
- Bounded: the format is told from a few header bytes; a ``.keras`` member is streamed to
  a temporary file in 1 MiB chunks (it may not declare more than ``16 x`` the zip's size
  ``+ 32 MiB``, nor yield more than it declares) and the zip's central directory may not
  exceed 4 MiB; the arrays read from one file total at most its size ``+ 32 MiB``
  (weights stored uncompressed cannot exceed the file's size), which is checked against
  each dataset's declared shape, dtype and chunk shape before it is read.
- Named errors: anything malformed is a `ValueError` that names the file and the HDF5
  object (or zip member).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from jaxgru.interop._layout import WEIGHT_NAMES, check_keras_params
from jaxgru.types import Params

__all__ = ["load_keras_weights"]

_ARCHIVE_WEIGHTS = "model.weights.h5"
_VARIABLE_SUFFIX = re.compile(r":\d+$")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive's end record
_MiB = 1 << 20
_SLACK = 32 * _MiB  # what compressed data may add to the file's size, in the arrays read and in a zip member
_MAX_INFLATION = 16  # a .keras member may declare this many times the zip's size (+ _SLACK)
_MAX_ZIP_DIRECTORY = 4 * _MiB  # a .keras holds a handful of entries; zipfile keeps ~10x this in objects
_COPY_CHUNK = _MiB
_MAX_SOFT_LINKS = 16  # HDF5's own limit on soft links followed in one lookup (so work stays linear)
# HDF5's built-in filters and h5py's lzf (compiled into h5py); any other is a plugin loaded from disk
_BUILTIN_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset",
                    32000: "lzf"}
_FILE_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
               stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket"}
_NOT_KERAS = "not a Keras .h5, .weights.h5 or .keras file"


def _import_h5py():
    try:
        import h5py
    except ImportError as error:
        raise ImportError("load_keras_weights reads HDF5 files with h5py, which is not installed; "
                          "install it with `pip install jaxgru[h5]` (or `pip install h5py`).") from error
    return h5py


# ------------------------------------------------------------------ the file on disk
def _path_text(path: Any) -> str:
    """``path`` as a ``str``; bytes paths and other objects are a `TypeError`."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str):
        raise TypeError(f"path: expected a str or os.PathLike naming a file, got {type(path).__name__}.")
    return text


@contextlib.contextmanager
def _open_regular(path: str) -> Iterator[tuple[BinaryIO, int]]:
    """The open file and its size; only a regular file is opened (a FIFO or device could
    block or never end), and ``fstat`` checks the file actually opened."""
    try:
        info = os.stat(path)  # FileNotFoundError/PermissionError name the path
    except ValueError as error:  # e.g. an embedded NUL
        raise ValueError(f"{path!r}: not a usable path ({error}).") from error
    _check_regular(path, info)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with open(fd, "rb") as file:
        info = os.fstat(file.fileno())
        _check_regular(path, info)
        yield file, info.st_size


def _check_regular(path: str, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise ValueError(f"{path}: {kind}, not a regular file, so {_NOT_KERAS}.")


def _is_zip(file: BinaryIO, size: int, path: str) -> bool:
    """True for a zip, False for HDF5, from header bytes only: HDF5's signature sits at
    offset 0, or at 512, 1024, 2048, ... after a user block."""
    file.seek(0)
    head = file.read(len(_HDF5_SIGNATURE))
    if head == _HDF5_SIGNATURE:
        return False
    if head.startswith(_ZIP_SIGNATURES):
        return True
    offset = 512
    while offset + len(_HDF5_SIGNATURE) <= size:
        file.seek(offset)
        if file.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
            return False
        offset *= 2
    raise ValueError(f"{path}: {_NOT_KERAS} (no HDF5 or zip signature).")


# ------------------------------------------------------------------ the .keras zip
@contextlib.contextmanager
def _extracted_weights(file: BinaryIO, size: int, path: str) -> Iterator[str]:
    """The path of a temporary copy of the zip's ``model.weights.h5``, deleted on exit."""
    _check_zip_directory(file, path)
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path}: a corrupt zip file ({error}).") from error
    with archive:
        entry = _weights_entry(archive, size, path)
        fd, temporary = tempfile.mkstemp(suffix=".weights.h5")
        try:
            with open(fd, "wb") as target:
                _copy_entry(archive, entry, target, path)
            yield temporary
        finally:
            os.unlink(temporary)


def _check_zip_directory(file: BinaryIO, path: str) -> None:
    """Bounds the central directory (read with zipfile's own reader of the end record, so
    this sees what `zipfile.ZipFile` will load): zipfile holds one object per entry."""
    end = zipfile._EndRecData(file)  # type: ignore[attr-defined]  # zipfile's private reader, not in its stubs
    if end is None:
        raise ValueError(f"{path}: a corrupt zip file (no end of central directory record).")
    declared = end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]  # private too
    if declared > _MAX_ZIP_DIRECTORY:
        raise ValueError(f"{path}: the zip's central directory declares {declared} bytes, more "
                         f"than the {_MAX_ZIP_DIRECTORY} a .keras file needs.")


def _weights_entry(archive: zipfile.ZipFile, size: int, path: str) -> zipfile.ZipInfo:
    """The one ``model.weights.h5`` entry: a plain file, stored or deflated, unencrypted,
    declaring at most ``_MAX_INFLATION x size + _SLACK`` bytes."""
    entries = [info for info in archive.infolist() if info.filename == _ARCHIVE_WEIGHTS]
    where = f"{path}: the zip entry {_ARCHIVE_WEIGHTS!r}"
    if not entries:
        names = archive.namelist()
        raise ValueError(f"{path}: a zip file without {_ARCHIVE_WEIGHTS!r}, so not a .keras file "
                         f"(it holds {names[:10]}{' ...' if len(names) > 10 else ''}).")
    if len(entries) > 1:
        raise ValueError(f"{where} appears {len(entries)} times; a .keras file holds one.")
    entry = entries[0]
    if stat.S_IFMT(entry.external_attr >> 16) not in (0, stat.S_IFREG):
        raise ValueError(f"{where} is not a regular file (a symbolic link or other special entry).")
    if entry.flag_bits & 0x1:
        raise ValueError(f"{where} is encrypted.")
    if entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f"{where} uses compression method {entry.compress_type}; Keras stores or deflates "
                         f"its entries.")
    limit = _MAX_INFLATION * size + _SLACK
    if entry.file_size > limit:
        raise ValueError(f"{where} declares {entry.file_size} bytes, more than {limit} "
                         f"({_MAX_INFLATION} x the zip's {size} bytes + {_SLACK}): a decompression bomb?")
    return entry


def _copy_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, target: BinaryIO, path: str) -> None:
    """Streams ``entry`` into ``target`` in bounded chunks, stopping as soon as it yields more
    than it declares; zipfile checks the CRC at the end."""
    written = 0
    try:
        with archive.open(entry) as member:
            while chunk := member.read(_COPY_CHUNK):
                written += len(chunk)
                if written > entry.file_size:
                    break
                target.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as error:
        raise ValueError(f"{path}: the zip entry {entry.filename!r} is corrupt ({error}).") from error
    if written != entry.file_size:
        raise ValueError(f"{path}: the zip entry {entry.filename!r} is corrupt (it yields "
                         f"{'more than' if written > entry.file_size else written} bytes, its header "
                         f"declares {entry.file_size}).")


# ------------------------------------------------------------------ HDF5 objects
class _Node(NamedTuple):
    """An HDF5 object, the path it was reached by (``""`` for the root) and its parent node."""
    obj: Any
    path: str
    parent: _Node | None


def _join(group_path: str, name: str) -> str:
    return f"{group_path}/{name}" if group_path else name


def _names(relative: str) -> list[str]:
    """The link names of a relative HDF5 path, or [] when it is not one (absolute, empty
    names, ``.``): such a name could address objects outside the group it is looked up in."""
    names = relative.split("/")
    return [] if any(name in ("", ".") for name in names) else names


class _Reader:
    """Follows links and reads data of one open HDF5 file under the module's rules;
    ``label`` names the file in errors, ``budget`` is the bytes of arrays it may still read."""

    def __init__(self, h5py, label: str, budget: int):
        self.h5py, self.label, self.budget = h5py, label, budget

    def error(self, where: str, problem: str) -> ValueError:
        return ValueError(f"{self.label}: {where!r} {problem}")

    # ---------------------------------------------------------------- links
    def lookup(self, node: _Node, relative: str, kind: type, hops: Iterator[int] | None = None) -> _Node:
        """The object at ``relative`` (a path below ``node``), which must be a ``kind``
        (an h5py Group or Dataset); every name on the way is checked by `child`. ``hops``
        counts the soft links followed in one lookup, however nested (as HDF5 does)."""
        hops = itertools.count() if hops is None else hops
        names = _names(relative)
        if not names:
            raise self.error(node.path or "/", f"has no object {relative!r}: not a relative path of HDF5 names "
                                              f"(it is absolute, or has empty or '.' names).")
        for name in names:
            node = self.child(node, name, hops)
        if not isinstance(node.obj, kind):
            raise self.error(node.path, f"is a {type(node.obj).__name__}, expected a {kind.__name__}.")
        return node

    def child(self, node: _Node, name: str, hops: Iterator[int] | None = None) -> _Node:
        """The object that ``node``'s link ``name`` points to, following only a hard link or a
        soft link whose target lies inside ``node``'s group (so never another file, nor
        another layer's weights)."""
        where = _join(node.path, name)
        if not isinstance(node.obj, self.h5py.Group):
            raise self.error(node.path, f"is a {type(node.obj).__name__}, not a group holding {name!r}.")
        link = node.obj.get(name, getlink=True)
        if link is None:
            raise self.error(where, "does not exist.")
        if isinstance(link, self.h5py.HardLink):
            return _Node(node.obj[name], where, node)
        if isinstance(link, self.h5py.ExternalLink):
            raise self.error(where, f"is an external link to {link.path!r} in {link.filename!r}; a weights "
                                    f"file must be self-contained.")
        if not isinstance(link, self.h5py.SoftLink):
            raise self.error(where, "is a user-defined link; a weights file must be self-contained.")
        return self._follow_soft(node, where, link.path, itertools.count() if hops is None else hops)

    def _follow_soft(self, node: _Node, where: str, target: str, hops: Iterator[int]) -> _Node:
        """The target of the soft link ``where`` held by ``node``'s group, when it lies inside
        that group (a relative target is relative to it)."""
        relative = target
        if target.startswith("/"):
            inside = f"/{node.path}/" if node.path else "/"
            relative = target[len(inside):] if target.startswith(inside) else ""
        if not _names(relative):
            raise self.error(where, f"is a soft link to {target!r}, outside the group {node.path or '/'!r} "
                                    f"that holds it.")
        if next(hops) >= _MAX_SOFT_LINKS:
            raise self.error(where, f"follows more than {_MAX_SOFT_LINKS} soft links.")
        return _Node(self.lookup(node, relative, object, hops).obj, where, node)

    # ---------------------------------------------------------------- attributes
    def strings(self, node: _Node, name: str) -> list[str]:
        """A list-of-strings attribute that Keras may have split into ``name0, name1, ...``
        when large; missing is empty."""
        attrs = node.obj.attrs
        if name in attrs:
            return self._string_array(node, name)
        values, chunk = [], 0
        while f"{name}{chunk}" in attrs:
            values += self._string_array(node, f"{name}{chunk}")
            chunk += 1
        return values

    def text(self, node: _Node, name: str) -> str | None:
        """A scalar string attribute, or None when missing."""
        return self._string_array(node, name, rank=0)[0] if name in node.obj.attrs else None

    def _string_array(self, node: _Node, name: str, rank: int = 1) -> list[str]:
        """The strings of attribute ``name``, checked to be strings of ``rank`` before reading
        (Keras writes ``layer_names`` and ``weight_names`` as 1-D, ``name`` as a scalar)."""
        attribute = node.obj.attrs.get_id(name)
        if rank == 1 and attribute.shape == (0,):  # an empty list, written as numpy's float64 default
            return []
        try:
            is_text = self.h5py.check_string_dtype(attribute.dtype) is not None
        except TypeError:  # an HDF5 type with no numpy equivalent
            is_text = False
        if not is_text or attribute.shape is None or len(attribute.shape) != rank:
            expected = "a list of strings" if rank else "a string"
            raise self.error(node.path or "/", f"has an attribute {name!r} of shape {attribute.shape} that is not "
                                              f"{expected}.")
        values = np.asarray(node.obj.attrs[name]).reshape(-1)
        try:
            return [value.decode("utf8") if isinstance(value, bytes) else str(value) for value in values]
        except UnicodeDecodeError as error:
            raise self.error(node.path or "/", f"has an attribute {name!r} that is not UTF-8 text "
                                              f"({error}).") from error

    # ---------------------------------------------------------------- datasets
    def read(self, node: _Node) -> np.ndarray:
        """The dataset's array, read once its storage, dtype, rank and size have been checked."""
        dataset, where = node.obj, node.path
        self._check_storage(dataset, where)
        try:
            dtype = dataset.dtype
        except TypeError as error:
            raise self.error(where, f"has an HDF5 type with no numpy equivalent ({error}).") from error
        if dtype.kind != "f":
            raise self.error(where, f"has dtype {dtype}; expected floating-point weights.")
        shape = dataset.shape
        if shape is None or len(shape) not in (1, 2):
            raise self.error(where, f"has shape {shape}; GRU weights have rank 1 or 2.")
        self._charge(where, shape, dtype, dataset.chunks)
        try:
            return np.asarray(dataset[()])
        except (OSError, RuntimeError, ValueError) as error:
            raise self.error(where, f"could not be read ({error}).") from error

    def _check_storage(self, dataset, where: str) -> None:
        """Refuses data stored in other files (external storage, virtual datasets) and
        plugin filters."""
        plist = dataset.id.get_create_plist()
        if plist.get_layout() not in (self.h5py.h5d.COMPACT, self.h5py.h5d.CONTIGUOUS, self.h5py.h5d.CHUNKED):
            raise self.error(where, "is a virtual dataset (its data lives in other datasets or files); a "
                                    "weights file must be self-contained.")
        if plist.get_external_count():
            files = [plist.get_external(i)[0].decode("utf8", "replace")
                     for i in range(plist.get_external_count())]
            raise self.error(where, f"uses external storage ({files}); a weights file must be self-contained.")
        for i in range(plist.get_nfilters()):
            code, _, _, name = plist.get_filter(i)
            if code not in _BUILTIN_FILTERS:
                raise self.error(where, f"uses HDF5 filter {code} ({name.decode('utf8', 'replace')!r}), which is "
                                        f"not built into HDF5 or h5py (only {sorted(_BUILTIN_FILTERS.values())}).")

    def _charge(self, where: str, shape: tuple, dtype: np.dtype, chunks: tuple | None) -> None:
        """Takes the array's bytes (and its chunks', which HDF5 decompresses whole) from the budget."""
        nbytes = math.prod(shape) * dtype.itemsize
        chunk_bytes = math.prod(chunks) * dtype.itemsize if chunks else 0
        if max(nbytes, chunk_bytes) > self.budget:
            raise self.error(where, f"would take {max(nbytes, chunk_bytes)} bytes to read (shape {shape}, chunks "
                                    f"{chunks}, dtype {dtype}), more than the {self.budget} left of what the file "
                                    f"may hold (its size + {_SLACK}).")
        self.budget -= nbytes


# ------------------------------------------------------------------ GRUs in the two layouts
def _is_gru_shapes(shapes: list[tuple | None]) -> bool:
    """Two or three weights whose second is a recurrent kernel of shape ``(U, 3U)`` (and the
    first a matrix); the bias's shape is checked once read."""
    kernel, recurrent = shapes[:2] if len(shapes) in (2, 3) else (None, None)
    return (kernel is not None and recurrent is not None and len(kernel) == 2 and len(recurrent) == 2
            and recurrent[1] == 3 * recurrent[0])


def _add(reader: _Reader, layers: dict[str, Params], name: str, datasets: list[_Node], where: str) -> None:
    """Reads and checks the weights of one GRU (``datasets`` in `WEIGHT_NAMES` order) when
    their shapes are a GRU's."""
    if not _is_gru_shapes([node.obj.shape for node in datasets]):
        return
    if name in layers:
        raise ValueError(f"{reader.label}: two GRU weight sets are both named {name!r} (at {where!r}).")
    params = {weight: reader.read(node) for weight, node in zip(WEIGHT_NAMES[:len(datasets)], datasets, strict=True)}
    try:
        check_keras_params(params, lambda weight: f"{datasets[WEIGHT_NAMES.index(weight)].path!r} ({weight})")
    except ValueError as error:
        raise ValueError(f"{reader.label}: the GRU weights at {where!r} are malformed: {error}") from error
    layers[name] = params


def _legacy_layers(reader: _Reader, root: _Node) -> dict[str, Params]:
    """Layer name -> params from the legacy layout; a GRU inside a nested model or a
    Bidirectional wrapper is named ``"<outer>/<inner>"`` (the weight name's scopes
    without the cell's own scope). Every listed layer group and weight dataset must exist."""
    layers: dict[str, Params] = {}
    for layer_name in reader.strings(root, "layer_names"):
        group = reader.lookup(root, layer_name, reader.h5py.Group)
        cells: dict[str, dict[str, _Node]] = {}
        for weight_name in reader.strings(group, "weight_names"):
            dataset = reader.lookup(group, weight_name, reader.h5py.Dataset)
            scope, _, variable = weight_name.rpartition("/")
            cells.setdefault(scope, {})[_VARIABLE_SUFFIX.sub("", variable)] = dataset
        for scope, variables in cells.items():
            if not {"kernel", "recurrent_kernel"} <= set(variables) <= set(WEIGHT_NAMES):
                continue
            scopes = scope.split("/")[:-1]  # drop the cell's scope ("gru_cell")
            # Weight names start at the layer's own scope (tf_keras), or at an enclosing
            # model's scope (Keras 3: "sequential/gru/..."); a nested model's layers in
            # tf_keras start below the nested model's group.
            parts = scopes[scopes.index(layer_name):] if layer_name in scopes else [layer_name, *scopes]
            _add(reader, layers, "/".join(parts), [variables[name] for name in WEIGHT_NAMES if name in variables],
                 _join(group.path, scope))
    return layers


def _saving_lib_layers(reader: _Reader, root: _Node) -> dict[str, Params]:
    """Layer name -> params from the saving library's layout; names join the layer names
    (or, where tf_keras did not record them, the object path segments) of every layer
    from the outermost to the GRU, e.g. ``"bidirectional/forward_gru"``.

    Walks the groups depth-first through `_Reader.child` (each group once, however many
    links lead to it), rather than `visititems`, which follows every kind of link."""
    h5py = reader.h5py
    layers: dict[str, Params] = {}
    seen: set[int] = set()
    pending: list[tuple[_Node, str]] = [(root, name) for name in root.obj]
    while pending:
        node = reader.child(*pending.pop())
        if not isinstance(node.obj, h5py.Group):
            continue
        address = h5py.h5o.get_info(node.obj.id).addr
        if address in seen:
            continue
        seen.add(address)
        parts = node.path.split("/")
        if parts[-1] == "vars" and "cell" in parts[:-1]:
            _add_vars(reader, layers, node)
        else:
            pending += [(node, name) for name in node.obj]
    return layers


def _add_vars(reader: _Reader, layers: dict[str, Params], variables: _Node) -> None:
    """A cell's ``vars`` group, ``{"0", "1"[, "2"]}`` datasets when it is a GRU's."""
    names = set(variables.obj)
    if len(names) not in (2, 3) or names != {str(i) for i in range(len(names))}:
        return
    datasets = [reader.lookup(variables, str(i), reader.h5py.Dataset) for i in range(len(names))]
    owner = variables.parent
    assert owner is not None  # a vars group is reached from its parent, never the root
    if owner.path.rsplit("/", 1)[-1] == "cell":  # the RNN layer's `cell` attribute: named after its layer
        owner = owner.parent
    _add(reader, layers, "/".join(_layer_names(reader, owner)), datasets, variables.path)


def _layer_names(reader: _Reader, owner: _Node | None) -> list[str]:
    """The names of the layers from the outermost to ``owner``: each group on the way that
    has a ``vars`` group is a layer, named by its ``vars``'s ``name`` attribute or its path."""
    names = []
    node: _Node | None = owner
    while node is not None and node.path:
        link = node.obj.get("vars", getlink=True)
        if link is not None:
            variables = reader.child(node, "vars")
            if isinstance(variables.obj, reader.h5py.Group):
                name = reader.text(variables, "name")
                names.append(node.path.rsplit("/", 1)[-1] if name is None else name)
        node = node.parent
    return names[::-1]


def _read_hdf5(h5py, file_path: str, label: str, budget: int) -> dict[str, Params]:
    """The GRUs of the HDF5 file at ``file_path`` (``label`` names it in errors)."""
    try:
        file = h5py.File(file_path, "r", driver="sec2")
    except OSError as error:
        raise ValueError(f"{label}: {_NOT_KERAS} ({error}).") from error
    with file:
        reader = _Reader(h5py, label, budget)
        root = _Node(file, "", None)
        try:
            if file.get("model_weights", getlink=True) is not None:
                layers = _legacy_layers(reader, reader.lookup(root, "model_weights", h5py.Group))
            elif "layer_names" in file.attrs:
                layers = _legacy_layers(reader, root)
            else:
                layers = _saving_lib_layers(reader, root)
        except (OSError, RuntimeError, KeyError, TypeError) as error:  # HDF5 structures that cannot be read
            raise ValueError(f"{label}: the HDF5 data is corrupt ({type(error).__name__}: {error}).") from error
    if not layers:
        raise ValueError(f"{label}: no GRU weights found (looked for kernel, recurrent_kernel (U, 3U) and bias of "
                         f"GRU cells).")
    return layers


def load_keras_weights(path: str | os.PathLike) -> dict[str, Params]:
    """``{layer_name: params}`` for every GRU in a saved Keras model or weights file.

    Reads ``.h5`` (``model.save`` or ``model.save_weights`` in the legacy HDF5 format),
    ``.weights.h5`` and ``.keras`` files written by tf_keras or Keras 3 (the format is
    read from the file, not its extension). Needs ``h5py`` (``pip install jaxgru[h5]``).

    Names: the Keras layer name (``"gru_1"``); a GRU inside a ``Bidirectional`` wrapper or
    a nested model is ``"<outer>/<inner>"``, e.g. ``"bidirectional/forward_gru"`` and
    ``"bidirectional/backward_gru"``, ``"encoder/gru"``. tf_keras's ``.weights.h5`` and
    ``.keras`` files do not record layer names, so there the names are the file's object
    paths: a layer's snake-cased class with a counter in layer order (``"gru"``,
    ``"gru_1"``, ...) and ``"bidirectional/forward_layer"``, ``"bidirectional/backward_layer"``.

    Each params is as `from_keras` returns it: the bias shape gives ``reset_after``;
    bias-free layers need ``GRUCell(..., use_bias=False, reset_after=...)`` from the model.

    The file is treated as hostile (see the module docstring): it must be self-contained,
    and memory use is bounded by the file's own size plus a constant. The arrays read total
    at most the file's size (for a ``.keras``, the zip's) + 32 MiB, checked from each
    dataset's declared shape, dtype and chunks before reading; a ``.keras``'s
    ``model.weights.h5`` is streamed to a temporary file (deleted afterwards) and may
    declare at most 16 x the zip's size + 32 MiB. Metadata (group and attribute names)
    takes memory in proportion to how much of it the file holds, never to sizes it declares.

    Raises:
      TypeError: ``path`` is not a ``str`` or ``os.PathLike``.
      FileNotFoundError: nothing at ``path`` (other `OSError` s, such as
        `PermissionError`, pass through; all name the path).
      ImportError: h5py is missing.
      ValueError: naming the file and the HDF5 object or zip entry when: the path is not
        a regular file (a directory, FIFO, device); the file is neither HDF5 nor a zip
        holding exactly one plain, stored or deflated ``model.weights.h5``; the zip is
        corrupt (bad CRC, truncated) or declares more than the bounds above; an object
        the reader follows is an external link, a soft link leaving the group that holds
        it, or is missing or of the wrong kind (a group where a dataset is expected);
        a weight dataset uses external storage, a virtual layout or a plugin filter, is
        not floating-point, has rank other than 1 or 2, or declares more bytes than the
        budget left; an attribute read (``layer_names``, ``weight_names``, ``name``) is
        not strings; the HDF5 data is corrupt; the file holds no GRU, or malformed GRU
        weights.
    """
    path = _path_text(path)
    h5py = _import_h5py()
    with _open_regular(path) as (file, size):
        if not _is_zip(file, size, path):
            return _read_hdf5(h5py, path, path, size + _SLACK)
        with _extracted_weights(file, size, path) as weights:
            return _read_hdf5(h5py, weights, f"{path} ({_ARCHIVE_WEIGHTS})", size + _SLACK)
