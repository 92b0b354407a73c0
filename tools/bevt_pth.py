"""PyTorch checkpoints and safetensors files without torch (Python 3 and numpy only).

Reading: the zip format of torch.save (<archive>/data.pkl plus one <archive>/data/<key> record per storage)
and the legacy format of torch < 1.6 (magic number, three small pickles, the object pickle, the storage keys,
then the raw storages). Tensors of every dtype safetensors can hold, views with storage offsets and strides,
nested dicts and OrderedDicts, mmcv's meta with arbitrary Python objects, and whole pickled nn.Module objects
such as OpenAI's encoder.pkl all load. The unpickler is restricted: a global it does not know (a class of a
package that is not installed, or any function) becomes an inert `Stub` that records its name, arguments and
state. Nothing named by the file is imported or called, so a checkpoint cannot run code here. Storages are read
lazily from a memory map, so an optimizer state that is never converted is never read.

Writing: the zip format torch.load reads (tensors through torch._utils._rebuild_tensor_v2 with persistent-id
storages, "<archive>/byteorder", "<archive>/version", data records aligned to 64 bytes), and safetensors.

    import bevt_pth
    ckpt = bevt_pth.load("swin_base_patch244_window877_kinetics400_22k.pth")
    sd = ckpt["state_dict"]                  # {name: bevt_pth.Tensor}
    bevt_pth.save_safetensors("out.safetensors", sd)
    bevt_pth.save({"state_dict": sd}, "back.pth")

Errors a user can cause (a missing file, something that is not a checkpoint, a tensor that cannot be stored)
raise CheckpointError with a one-line message naming the file.
"""
import collections
import io
import json
import mmap
import os
import pickle
import struct
import sys
import tarfile
import zipfile
import zlib

import numpy as np

__all__ = ["CheckpointError", "Tensor", "Stub", "TorchDtype", "Call", "Object", "load", "save", "sniff",
           "load_safetensors", "save_safetensors", "is_module", "module_state_dict", "find_state_dict",
           "STATE_DICT_KEYS", "DTYPES"]


class CheckpointError(Exception):
    """Bad input: the message is one line naming the file and what is wrong."""


# --------------------------------------------------------------------------------------------------------------
# dtypes

class DType:
    __slots__ = ("name", "np", "size", "torch", "storage")

    def __init__(self, name, np_dtype, size, torch_name, storage):
        self.name = name            # safetensors spelling
        self.np = np.dtype(np_dtype)  # numpy dtype of the stored elements (bfloat16 as little-endian uint16)
        self.size = size
        self.torch = torch_name     # torch.<name>
        self.storage = storage      # torch.<Storage> class name of typed storages

    def __repr__(self):
        return self.name


DTYPES = {d.name: d for d in [
    DType("F64", "<f8", 8, "float64", "DoubleStorage"),
    DType("F32", "<f4", 4, "float32", "FloatStorage"),
    DType("F16", "<f2", 2, "float16", "HalfStorage"),
    DType("BF16", "<u2", 2, "bfloat16", "BFloat16Storage"),
    DType("I64", "<i8", 8, "int64", "LongStorage"),
    DType("I32", "<i4", 4, "int32", "IntStorage"),
    DType("I16", "<i2", 2, "int16", "ShortStorage"),
    DType("I8", "i1", 1, "int8", "CharStorage"),
    DType("U8", "u1", 1, "uint8", "ByteStorage"),
    DType("BOOL", "?", 1, "bool", "BoolStorage"),
]}
_BY_STORAGE = {d.storage: d for d in DTYPES.values()}
_BY_TORCH = {d.torch: d for d in DTYPES.values()}
_TORCH_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
                  "short": "int16"}
# Storages and dtypes torch has but safetensors (as bevt uses it) does not hold.
_UNSUPPORTED_STORAGES = {"ComplexFloatStorage", "ComplexDoubleStorage", "ComplexHalfStorage", "QInt8Storage",
                         "QUInt8Storage", "QInt32Storage", "QUInt4x2Storage", "QUInt2x4Storage"}
_FLOATING = {"F64", "F32", "F16", "BF16"}


def _dtype_of_numpy(a):
    for d in DTYPES.values():
        if d.name != "BF16" and a.dtype == d.np.newbyteorder("="):
            return d
    raise CheckpointError(f"numpy dtype {a.dtype} has no safetensors equivalent")


# --------------------------------------------------------------------------------------------------------------
# tensors

class _Storage:
    """A flat run of elements, read on first use."""
    __slots__ = ("dtype", "numel", "_source", "_array", "where")

    def __init__(self, dtype, numel, where):
        self.dtype = dtype
        self.numel = numel
        self.where = where        # for messages: "file.pth: data/3"
        self._source = None       # callable returning a uint8 array of the raw bytes
        self._array = None

    def array(self):
        if self._array is None:
            if self._source is None:
                raise CheckpointError(f"{self.where}: the storage's data is missing from the file")
            raw = self._source()
            want = self.numel * self.dtype.size
            if raw.size != want:
                raise CheckpointError(f"{self.where}: storage holds {raw.size} bytes, expected {want} "
                                      f"({self.numel} x {self.dtype.name}); the file is damaged")
            self._array = raw.view(self.dtype.np)
        return self._array


def _contiguous_strides(shape):
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= max(int(s), 1)
    return tuple(reversed(strides))


class Tensor:
    """A CPU tensor: dtype (safetensors spelling), shape, and its elements as a numpy array (bfloat16 as uint16).

    Tensors read from a checkpoint keep a reference to their storage, offset and strides and materialise on
    first use. `parameter` is true for nn.Parameter objects (written back as parameters)."""

    def __init__(self, dtype, shape, array=None, storage=None, offset=0, stride=None, requires_grad=False,
                 parameter=False):
        self.dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
        self.shape = tuple(int(s) for s in shape)
        self._array = array
        self._storage = storage
        self._offset = int(offset)
        self._stride = tuple(int(s) for s in stride) if stride is not None else _contiguous_strides(self.shape)
        self.requires_grad = bool(requires_grad)
        self.parameter = bool(parameter)
        self._base = None

    @staticmethod
    def from_numpy(a, dtype=None, parameter=False):
        """A copy of numpy array `a`; dtype "BF16" takes uint16 bit patterns (or converts a float array)."""
        a = np.asarray(a)
        if dtype in ("BF16", DTYPES["BF16"]):
            if a.dtype != np.uint16:
                a = _f32_to_bf16(a.astype(np.float32))
            d = DTYPES["BF16"]
        else:
            d = DTYPES[dtype] if isinstance(dtype, str) else (dtype or _dtype_of_numpy(a))
            a = a.astype(d.np)
        return Tensor(d, a.shape, array=np.ascontiguousarray(a), parameter=parameter)

    @staticmethod
    def as_strided(base, shape, stride, offset=0):
        """A view of contiguous tensor `base`'s elements; save() writes it on base's storage, as torch.save
        writes views and tied weights."""
        st = _Storage(base.dtype, base.numel, "view")
        st._array = base.numpy().reshape(-1)
        t = Tensor(base.dtype, shape, storage=st, offset=offset, stride=stride)
        t._base = base
        return t

    @property
    def numel(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def nbytes(self):
        return self.numel * self.dtype.size

    @property
    def is_floating_point(self):
        return self.dtype.name in _FLOATING

    def numpy(self):
        """The elements as a C-contiguous array of dtype.np (read-only when it views the file)."""
        if self._array is None:
            self._array = self._materialise()
        return self._array

    def _materialise(self):
        st = self._storage
        flat = st.array()
        if self.numel == 0:
            return np.empty(self.shape, self.dtype.np)
        if len(self._stride) != len(self.shape) or self._offset < 0 or any(s < 0 for s in self._stride):
            raise CheckpointError(f"{st.where}: tensor view with size {list(self.shape)}, stride "
                                  f"{list(self._stride)}, offset {self._offset} is malformed")
        last = self._offset + sum((n - 1) * s for n, s in zip(self.shape, self._stride))
        if last >= st.numel:
            raise CheckpointError(f"{st.where}: tensor view (size {list(self.shape)}, stride {list(self._stride)}, "
                                  f"offset {self._offset}) reaches past its storage of {st.numel} elements")
        if self._stride == _contiguous_strides(self.shape):
            return flat[self._offset:self._offset + self.numel].reshape(self.shape)
        view = np.lib.stride_tricks.as_strided(flat[self._offset:], shape=self.shape,
                                               strides=[s * self.dtype.size for s in self._stride],
                                               writeable=False)
        return np.ascontiguousarray(view)

    def tobytes(self):
        return self.numpy().tobytes()

    def float32(self):
        """The values as a float32 numpy array (bfloat16 widened exactly)."""
        a = self.numpy()
        if self.dtype.name == "BF16":
            return (a.astype(np.uint32) << 16).view(np.float32)
        return a.astype(np.float32)

    def to(self, dtype):
        """A converted copy (floating-point dtypes only change; integer and bool tensors are returned as they are)."""
        d = DTYPES[dtype] if isinstance(dtype, str) else dtype
        if d is self.dtype or not self.is_floating_point or d.name not in _FLOATING:
            return self
        if d.name == "BF16":
            return Tensor(d, self.shape, array=_f32_to_bf16(self.float32()), parameter=self.parameter)
        return Tensor(d, self.shape, array=self.float32().astype(d.np), parameter=self.parameter)

    def equal(self, other):
        return (isinstance(other, Tensor) and self.dtype is other.dtype and self.shape == other.shape
                and self.tobytes() == other.tobytes())

    def __repr__(self):
        return f"Tensor({self.dtype.name}, {list(self.shape)})"


def _f32_to_bf16(a):
    """Round-to-nearest-even float32 -> bfloat16 bit patterns (NaN stays NaN)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        rounded = np.where(nan, np.uint16(0x7FC0), rounded)
    return rounded


# --------------------------------------------------------------------------------------------------------------
# inert stand-ins for what the unpickler must not import

class Stub:
    """An object of a global the reader does not import: `stub_name` ("module.qualname"), the arguments it was
    called or constructed with, and whatever pickle gave it (state, items, list entries)."""

    stub_module = ""
    stub_qualname = ""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__.update(stub_args=args, stub_kwargs=kwargs, stub_called=False, stub_state=None,
                            stub_items=None, stub_list=None)
        return obj

    def __init__(self, *args, **kwargs):  # a call (REDUCE), as opposed to NEWOBJ, which only runs __new__
        self.__dict__["stub_called"] = True

    def __setstate__(self, state):
        self.__dict__["stub_state"] = state

    def __setitem__(self, key, value):
        if self.stub_items is None:
            self.__dict__["stub_items"] = collections.OrderedDict()
        self.stub_items[key] = value

    def append(self, value):
        if self.stub_list is None:
            self.__dict__["stub_list"] = []
        self.stub_list.append(value)

    def extend(self, values):
        for v in values:
            self.append(v)

    @classmethod
    def stub_name(cls):
        return f"{cls.stub_module}.{cls.stub_qualname}"

    def state_dict(self):
        """The object's attribute dict as pickle stored it ({} when there is none)."""
        s = self.stub_state
        if isinstance(s, tuple) and len(s) == 2 and (s[0] is None or isinstance(s[0], dict)):
            merged = dict(s[0] or {})
            if isinstance(s[1], dict):
                merged.update(s[1])
            return merged
        return s if isinstance(s, dict) else {}

    def __repr__(self):
        return f"<{self.stub_name()}>"


_STUB_CLASSES = {}


def _stub_class(module, qualname):
    key = (module, qualname)
    cls = _STUB_CLASSES.get(key)
    if cls is None:
        cls = type(qualname.rsplit(".", 1)[-1] or "Stub", (Stub,), {"stub_module": module, "stub_qualname": qualname})
        _STUB_CLASSES[key] = cls
    return cls


class TorchDtype:
    """torch.<name> as a value (pickled dtypes in metadata, the dtype argument of _rebuild_tensor_v3)."""

    def __init__(self, name):
        self.name = name

    def __eq__(self, other):
        return isinstance(other, TorchDtype) and other.name == self.name

    def __hash__(self):
        return hash(("torch", self.name))

    def __repr__(self):
        return f"torch.{self.name}"


class _Unsupported:
    """A tensor kind safetensors cannot hold (quantized, sparse, complex, ...); an error only when it is used."""

    def __init__(self, what):
        self.what = what

    def __repr__(self):
        return f"<unsupported tensor: {self.what}>"


class Call:
    """For writing: `module.name(*args)` (a REDUCE of a global)."""

    def __init__(self, module, name, args=()):
        self.module, self.name, self.args = module, name, tuple(args)


class _GlobalRef:
    """For writing: a reference to global `module.name` itself (torch.<Kind>Storage in a persistent id)."""

    def __init__(self, module, name):
        self.module, self.name = module, name


class Object:
    """For writing: an instance of class `module.name` rebuilt by pickle as cls.__new__(cls, *args) and then
    given `state` (NEWOBJ + BUILD), as torch.save writes an nn.Module."""

    def __init__(self, module, name, state, args=()):
        self.module, self.name, self.state, self.args = module, name, state, tuple(args)


# --------------------------------------------------------------------------------------------------------------
# the restricted unpickler

def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if isinstance(storage, _Unsupported):
        return storage
    if not isinstance(storage, _Storage):
        return _Unsupported(f"a tensor whose storage is {type(storage).__name__}")
    return Tensor(storage.dtype, size, storage=storage, offset=storage_offset, stride=stride,
                  requires_grad=requires_grad is True)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    if isinstance(storage, _Unsupported):
        return storage
    if not isinstance(dtype, TorchDtype) or dtype.name not in _BY_TORCH:
        return _Unsupported(f"dtype {dtype}")
    d = _BY_TORCH[dtype.name]
    if storage.dtype is not d:  # an untyped (byte) storage seen as elements of d
        if (storage.numel * storage.dtype.size) % d.size:
            return _Unsupported(f"a {dtype} view of a storage of {storage.numel * storage.dtype.size} bytes")
        typed = _Storage(d, storage.numel * storage.dtype.size // d.size, storage.where)
        typed._source = lambda s=storage: s.array().view(np.uint8)
        storage = typed
    return Tensor(d, size, storage=storage, offset=storage_offset, stride=stride, requires_grad=requires_grad is True)


def _rebuild_parameter(data, requires_grad=True, backward_hooks=None, state=None):
    if isinstance(data, Tensor):
        data.parameter = True
        data.requires_grad = requires_grad is True
    return data


def _rebuild_from_type_v2(func, new_type, args, state=None):
    return func(*args) if callable(func) else func


def _unsupported_fn(what):
    def fn(*args, **kwargs):
        return _Unsupported(what)
    return fn


def _reconstructor(cls, base, state):
    # copyreg._reconstructor, limited to what this reader can build without running the file's code.
    if isinstance(cls, type) and issubclass(cls, Stub):
        obj = cls.__new__(cls)
        if state is not None:
            obj.__dict__["stub_args"] = (state,)
        return obj
    if cls in (collections.OrderedDict, dict, list, set):
        return cls()
    raise pickle.UnpicklingError(f"copyreg._reconstructor of {cls!r}")


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    # How protocol-2 pickles carry bytes: _codecs.encode(text, "latin1").
    if not isinstance(obj, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise pickle.UnpicklingError("_codecs.encode with unexpected arguments")
    return obj.encode(encoding, errors)


def _torch_device(*args):
    return str(args[0]) if args else "cpu"


def _torch_size(*args):
    return tuple(args[0]) if args else ()


_SAFE_BUILTINS = {"set": set, "frozenset": frozenset, "bytearray": bytearray, "complex": complex, "slice": slice,
                  "list": list, "dict": dict, "tuple": tuple, "int": int, "float": float, "str": str, "bool": bool,
                  "bytes": bytes}

_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _codecs_encode,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch._utils", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch._utils", "_rebuild_qtensor"): _unsupported_fn("quantized"),
    ("torch._utils", "_rebuild_sparse_tensor"): _unsupported_fn("sparse"),
    ("torch._utils", "_rebuild_sparse_csr_tensor"): _unsupported_fn("sparse"),
    ("torch._utils", "_rebuild_nested_tensor"): _unsupported_fn("nested"),
    ("torch._utils", "_rebuild_meta_tensor_no_storage"): _unsupported_fn("meta (no data)"),
    ("torch._utils", "_rebuild_device_tensor_from_numpy"): _unsupported_fn("device tensor from numpy"),
    ("torch._utils", "_rebuild_wrapper_subclass"): _unsupported_fn("tensor subclass"),
    ("torch", "device"): _torch_device,
    ("torch", "Size"): _torch_size,
    ("torch.jit._pickle", "restore_type_tag"): lambda obj, tag=None: obj,
}
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _BY_STORAGE.get(name)
        if name == "UntypedStorage" or name == "_UntypedStorage":
            self.dtype = DTYPES["U8"]


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, source, persistent=None):
        super().__init__(file, encoding="utf-8")
        self._source = source
        self._persistent = persistent

    def find_class(self, module, name):
        module = _PY2_MODULES.get(module, module)
        fn = _ALLOWED.get((module, name))
        if fn is not None:
            return fn
        if module == "builtins" and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if module == "torch":
            if name.endswith("Storage") and (name in _BY_STORAGE or name in ("UntypedStorage", "_UntypedStorage")):
                return _StorageType(name)
            if name.endswith("Storage"):
                return _StorageType(name)  # an unsupported kind; tensors on it become _Unsupported
            if name in _BY_TORCH or name in _TORCH_ALIASES or name.startswith(("float", "int", "uint", "complex",
                                                                                 "bool", "bfloat", "qint", "quint")):
                return TorchDtype(_TORCH_ALIASES.get(name, name))
        return _stub_class(module, name)

    def persistent_load(self, pid):
        if self._persistent is None:
            raise pickle.UnpicklingError("persistent id in a pickle that has no storages")
        return self._persistent(pid)


def _decode(x):
    return x.decode("ascii") if isinstance(x, bytes) else x


def _storage_for(stype, numel, where):
    if not isinstance(stype, _StorageType):
        raise pickle.UnpicklingError(f"storage of type {stype!r}")
    if stype.dtype is None:
        return _Unsupported(f"torch.{stype.name}")
    return _Storage(stype.dtype, int(numel), where)


# --------------------------------------------------------------------------------------------------------------
# reading

MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL_VERSION = 1001


def sniff(path):
    """'zip' (torch.save), 'legacy' (torch < 1.6 pickle stream), 'safetensors', 'tar' (torch < 0.4) or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file")
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror})")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head[:1] == b"\x80" and len(head) > 2:
        return "legacy"
    if len(head) >= 9:
        n = struct.unpack("<Q", head[:8])[0]
        if 2 <= n <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    try:
        if size > 512 and tarfile.is_tarfile(path):
            return "tar"
    except OSError:
        pass
    return None


def load(path):
    """The object torch.save stored in `path` (zip or legacy format), tensors as bevt_pth.Tensor."""
    kind = sniff(path)
    if kind == "zip":
        return _load_zip(path)
    if kind == "legacy":
        return _load_legacy(path)
    if kind == "safetensors":
        raise CheckpointError(f"{path}: is a safetensors file, not a PyTorch checkpoint")
    if kind == "tar":
        raise CheckpointError(f"{path}: a tar checkpoint of torch < 0.4; load it with torch and save it again "
                              "with torch.save")
    raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither the zip format of torch.save nor a "
                          "legacy pickle stream)")


def _unpickle(f, path, persistent=None):
    try:
        return _Unpickler(f, path, persistent).load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            struct.error, UnicodeDecodeError, OverflowError, MemoryError, RecursionError) as e:
        raise CheckpointError(f"{path}: unreadable pickle data ({type(e).__name__}: {e})".replace("\n", " "))


def _record_reader(path, zf, mm, info):
    """A function returning the bytes of zip entry `info` (zero-copy from the map when stored uncompressed)."""
    if info.compress_type == zipfile.ZIP_STORED and mm is not None:
        off = info.header_offset
        if off + 30 > len(mm) or mm[off:off + 4] != b"PK\x03\x04":
            raise CheckpointError(f"{path}: damaged zip (no local header for {info.filename})")
        nlen, elen = struct.unpack_from("<HH", mm, off + 26)
        start = off + 30 + nlen + elen
        if start + info.file_size > len(mm):
            raise CheckpointError(f"{path}: truncated ({info.filename} runs past the end of the file)")
        return lambda: np.frombuffer(mm, dtype=np.uint8, count=info.file_size, offset=start)

    def read():
        try:
            return np.frombuffer(zf.read(info), dtype=np.uint8)
        except (zipfile.BadZipFile, zlib.error, OSError) as e:
            raise CheckpointError(f"{path}: cannot read {info.filename} ({e})")
    return read


def _map(path):
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return None
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def _load_zip(path):
    try:
        zf = zipfile.ZipFile(path)
        infos = {i.filename: i for i in zf.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise CheckpointError(f"{path}: damaged or truncated zip ({e})")
    pkl = [n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1]
    if not pkl:
        if any(n.endswith("/constants.pkl") for n in infos):
            raise CheckpointError(f"{path}: a TorchScript archive (torch.jit.save), not a torch.save checkpoint; "
                                  "in Python: torch.save(torch.jit.load(path).state_dict(), 'weights.pth')")
        raise CheckpointError(f"{path}: a zip file without <archive>/data.pkl, so not a torch.save checkpoint")
    prefix = pkl[0][:-len("data.pkl")]
    if prefix + "constants.pkl" in infos or prefix + "code/" in infos:
        raise CheckpointError(f"{path}: a TorchScript archive (torch.jit.save), not a torch.save checkpoint; "
                              "in Python: torch.save(torch.jit.load(path).state_dict(), 'weights.pth')")
    byteorder = "little"
    if prefix + "byteorder" in infos:
        byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{path}: unknown byteorder record '{byteorder}'")
    mm = _map(path)
    storages = {}

    def persistent(pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or _decode(pid[0]) != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        stype, key, _location, numel = pid[1], str(_decode(pid[2])), pid[3], pid[4]
        if key in storages:
            return storages[key]
        st = _storage_for(stype, numel, f"{path}: {prefix}data/{key}")
        if isinstance(st, _Storage):
            info = infos.get(f"{prefix}data/{key}")
            if info is None:
                raise CheckpointError(f"{path}: storage record {prefix}data/{key} is missing")
            if stype.name in ("UntypedStorage", "_UntypedStorage"):
                st.numel = info.file_size
            reader = _record_reader(path, zf, mm, info)
            if byteorder == "big" and st.dtype.size > 1:
                d = st.dtype
                st._source = lambda r=reader, d=d: r().view(d.np.newbyteorder(">")).astype(d.np).view(np.uint8)
            else:
                st._source = reader
        storages[key] = st
        return st

    with zf.open(pkl[0]) as f:
        data = io.BytesIO(f.read())
    return _unpickle(data, path, persistent)


def _load_legacy(path):
    with open(path, "rb") as f:
        try:
            magic = _Unpickler(f, path).load()
        except Exception:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (a pickle stream that does not start with "
                                  "torch's magic number)")
        if magic != MAGIC_NUMBER:
            raise CheckpointError(f"{path}: a Python pickle, not a PyTorch checkpoint (no torch magic number)")
        version = _unpickle(f, path)
        if version != LEGACY_PROTOCOL_VERSION:
            raise CheckpointError(f"{path}: legacy checkpoint protocol {version!r}, expected "
                                  f"{LEGACY_PROTOCOL_VERSION}")
        sys_info = _unpickle(f, path)
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise CheckpointError(f"{path}: written on a big-endian machine; load and save it with torch there")
        roots = {}

        def persistent(pid):
            if not isinstance(pid, tuple) or not pid:
                raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
            kind = _decode(pid[0])
            if kind == "module":
                return pid[1]
            if kind != "storage" or len(pid) < 6:
                raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
            stype, root_key, _location, numel, view = pid[1], str(_decode(pid[2])), pid[3], pid[4], pid[5]
            if root_key not in roots:
                roots[root_key] = _storage_for(stype, numel, f"{path}: storage {root_key}")
            root = roots[root_key]
            if view is None or isinstance(root, _Unsupported):
                return root
            _view_key, offset, size = view
            sub = _Storage(root.dtype, int(size), root.where)
            sub._source = lambda r=root, o=int(offset), n=int(size): r.array()[o:o + n].view(np.uint8)
            return sub

        obj = _unpickle(f, path, persistent)
        keys = _unpickle(f, path)
        pos = f.tell()
    if not isinstance(keys, list):
        raise CheckpointError(f"{path}: legacy checkpoint without its list of storages")
    mm = _map(path)
    size = len(mm) if mm is not None else 0
    for key in keys:
        key = str(_decode(key))
        st = roots.get(key)
        if pos + 8 > size:
            raise CheckpointError(f"{path}: truncated (storage {key} is missing)")
        (numel,) = struct.unpack_from("<q", mm, pos)
        if st is None or isinstance(st, _Unsupported):
            raise CheckpointError(f"{path}: storage {key} is not referenced or not supported")
        nbytes = numel * st.dtype.size
        if numel != st.numel or pos + 8 + nbytes > size:
            raise CheckpointError(f"{path}: storage {key} is damaged or truncated ({numel} elements recorded, "
                                  f"{st.numel} expected)")
        st._source = lambda o=pos + 8, n=nbytes: np.frombuffer(mm, dtype=np.uint8, count=n, offset=o)
        pos += 8 + nbytes
    return obj


# --------------------------------------------------------------------------------------------------------------
# modules

def is_module(obj):
    """True for a pickled nn.Module (its attribute dict has _parameters / _modules)."""
    if not isinstance(obj, Stub):
        return False
    s = obj.state_dict()
    return isinstance(s.get("_modules"), dict) or isinstance(s.get("_parameters"), dict)


def module_state_dict(obj, prefix=""):
    """What module.state_dict() returns for a pickled module: parameters, then persistent buffers, then each
    child's entries under "<child>."."""
    out = collections.OrderedDict()
    s = obj.state_dict()
    skip = s.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        items = s.get(group) or {}
        for name, value in items.items():
            if value is None or (group == "_buffers" and name in skip):
                continue
            out[prefix + name] = value
    for name, child in (s.get("_modules") or {}).items():
        if child is None:
            continue
        if is_module(child):
            out.update(module_state_dict(child, prefix + name + "."))
    return out


# --------------------------------------------------------------------------------------------------------------
# writing: pickle (protocol 2, as torch.save) and the zip container

class _Pickler:
    def __init__(self, storage_id):
        self._out = []
        self._storage_id = storage_id

    def dumps(self, obj):
        self._out = [b"\x80\x02"]
        self._save(obj)
        self._out.append(b".")
        return b"".join(self._out)

    def _w(self, b):
        self._out.append(b)

    def _global(self, module, name):
        self._w(b"c" + module.encode("ascii") + b"\n" + name.encode("ascii") + b"\n")

    def _save(self, obj):
        w = self._w
        if obj is None:
            w(b"N")
        elif obj is True:
            w(b"\x88")
        elif obj is False:
            w(b"\x89")
        elif isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
            self._int(int(obj))
        elif isinstance(obj, (float, np.floating)):
            w(b"G" + struct.pack(">d", float(obj)))
        elif isinstance(obj, str):
            b = obj.encode("utf-8", "surrogatepass")
            w(b"X" + struct.pack("<I", len(b)) + b)
        elif isinstance(obj, (bytes, bytearray)):
            self._global("_codecs", "encode")
            self._save((bytes(obj).decode("latin1"), "latin1"))
            w(b"R")
        elif isinstance(obj, Tensor):
            self._tensor(obj)
        elif isinstance(obj, tuple):
            if not obj:
                w(b")")
                return
            w(b"(")
            for x in obj:
                self._save(x)
            w(b"t")
        elif isinstance(obj, list):
            w(b"]")
            self._appends(obj)
        elif isinstance(obj, collections.OrderedDict):
            self._global("collections", "OrderedDict")
            w(b")R")
            self._setitems(obj.items())
        elif isinstance(obj, dict):
            w(b"}")
            self._setitems(obj.items())
        elif isinstance(obj, (set, frozenset)):
            self._global("builtins", type(obj).__name__)
            self._save((list(obj),))
            w(b"R")
        elif isinstance(obj, TorchDtype):
            self._global("torch", obj.name)
        elif isinstance(obj, _GlobalRef):
            self._global(obj.module, obj.name)
        elif isinstance(obj, Call):
            self._global(obj.module, obj.name)
            self._save(obj.args)
            w(b"R")
        elif isinstance(obj, Object):
            self._global(obj.module, obj.name)
            self._save(obj.args)
            w(b"\x81")
            if obj.state is not None:
                self._save(obj.state)
                w(b"b")
        elif isinstance(obj, Stub):
            self._global(obj.stub_module, obj.stub_qualname)
            self._save(tuple(obj.stub_args))
            w(b"R" if obj.stub_called else b"\x81")
            if obj.stub_list:
                self._appends(obj.stub_list)
            if obj.stub_items:
                self._setitems(obj.stub_items.items())
            if obj.stub_state is not None:
                self._save(obj.stub_state)
                w(b"b")
        elif isinstance(obj, _Unsupported):
            raise CheckpointError(f"cannot write {obj!r}")
        else:
            raise CheckpointError(f"cannot write a {type(obj).__name__} object into a .pth file")

    def _int(self, v):
        if 0 <= v < 256:
            self._w(b"K" + bytes([v]))
        elif 0 <= v < 65536:
            self._w(b"M" + struct.pack("<H", v))
        elif -2 ** 31 <= v < 2 ** 31:
            self._w(b"J" + struct.pack("<i", v))
        else:  # LONG1; 8 bytes whenever the value fits, the only length LibTorch's unpickler accepts
            n = 8 if -2 ** 63 <= v < 2 ** 63 else (v.bit_length() + 8) // 8
            self._w(b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True))

    def _appends(self, items):
        items = list(items)
        for i in range(0, len(items), 1000):
            self._w(b"(")
            for x in items[i:i + 1000]:
                self._save(x)
            self._w(b"e")

    def _setitems(self, items):
        items = list(items)
        for i in range(0, len(items), 1000):
            self._w(b"(")
            for k, v in items[i:i + 1000]:
                self._save(k)
                self._save(v)
            self._w(b"u")

    def _tensor(self, t):
        if t.parameter:
            self._global("torch._utils", "_rebuild_parameter")
            self._w(b"(")
        self._global("torch._utils", "_rebuild_tensor_v2")
        self._w(b"(")
        base = t._base if t._base is not None else t
        self._save(self._storage_id(base))
        self._w(b"Q")  # BINPERSID
        self._save(t._offset if t._base is not None else 0)
        self._save(t.shape)
        self._save(t._stride if t._base is not None else _contiguous_strides(t.shape))
        self._save(bool(t.requires_grad) and not t.parameter)
        self._global("collections", "OrderedDict")
        self._w(b")R")  # backward hooks: an empty OrderedDict
        self._w(b"tR")
        if t.parameter:
            self._save(bool(t.requires_grad))
            self._global("collections", "OrderedDict")
            self._w(b")R")
            self._w(b"tR")


_ZIP64_LIMIT = 0xFFFFFFFF  # tests lower it to exercise the zip64 records
_ALIGN = 64                # torch.save aligns every record's data to 64 bytes (memory-mapped loading needs it)
_PAD_ID = 0x7462           # a private extra-field id; readers skip unknown ones


def _as_bytes(data):
    if isinstance(data, np.ndarray):
        return memoryview(np.ascontiguousarray(data).reshape(-1).view(np.uint8))
    return memoryview(data).cast("B")


def _write_zip(f, entries):
    """Stored (uncompressed) zip with data aligned to _ALIGN; entries are (name, bytes-like or numpy array)."""
    central = []
    pos = 0
    for name, data in entries:
        mv = _as_bytes(data)
        nb = name.encode("utf-8")
        size = len(mv)
        crc = zlib.crc32(mv) & 0xFFFFFFFF
        big = size >= _ZIP64_LIMIT
        extra = struct.pack("<HHQQ", 1, 16, size, size) if big else b""
        start = pos + 30 + len(nb) + len(extra) + 4
        pad = (-start) % _ALIGN
        extra += struct.pack("<HH", _PAD_ID, pad) + b"Z" * pad
        flags = 0x0800 if not name.isascii() else 0
        f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if big else 20, flags, 0, 0, 0x21, crc,
                            0xFFFFFFFF if big else size, 0xFFFFFFFF if big else size, len(nb), len(extra)))
        f.write(nb)
        f.write(extra)
        f.write(mv)
        central.append((nb, flags, crc, size, pos))
        pos += 30 + len(nb) + len(extra) + size
    cd_start = pos
    for nb, flags, crc, size, off in central:
        z64 = b""
        if size >= _ZIP64_LIMIT:
            z64 += struct.pack("<QQ", size, size)
        if off >= _ZIP64_LIMIT:
            z64 += struct.pack("<Q", off)
        extra = struct.pack("<HH", 1, len(z64)) + z64 if z64 else b""
        need = 45 if z64 else 20
        big_size = size >= _ZIP64_LIMIT
        rec = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, need, need, flags, 0, 0, 0x21, crc,
                          0xFFFFFFFF if big_size else size, 0xFFFFFFFF if big_size else size, len(nb), len(extra),
                          0, 0, 0, 0, 0xFFFFFFFF if off >= _ZIP64_LIMIT else off)
        f.write(rec + nb + extra)
        pos += len(rec) + len(nb) + len(extra)
    cd_size = pos - cd_start
    n = len(central)
    if n >= 0xFFFF or cd_start >= _ZIP64_LIMIT or cd_size >= _ZIP64_LIMIT:
        f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_start))
        f.write(struct.pack("<IIQI", 0x07064B50, 0, pos, 1))
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                            min(cd_size, 0xFFFFFFFF), min(cd_start, 0xFFFFFFFF), 0))
    else:
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_start, 0))


def _atomic_write(path, write):
    """Writes through `write(file)` into a temporary file next to `path`, then renames it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CheckpointError(f"{path}: the output folder {folder} does not exist")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a folder; give an output file name")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save(obj, path, archive="archive"):
    """torch.save's zip format: `obj` made of dicts, OrderedDicts, lists, tuples, str, int, float, bool, None,
    bytes, Tensor, Call, Object and Stub. Each distinct Tensor object gets one storage record."""
    keys = {}
    order = []

    def storage_id(t):
        k = keys.get(id(t))
        if k is None:
            k = str(len(order))
            keys[id(t)] = k
            order.append(t)
        return ("storage", _GlobalRef("torch", t.dtype.storage), k, "cpu", t.numel)

    data = _Pickler(storage_id).dumps(obj)
    entries = [(f"{archive}/data.pkl", data), (f"{archive}/byteorder", b"little")]
    entries += [(f"{archive}/data/{i}", t.numpy()) for i, t in enumerate(order)]
    entries.append((f"{archive}/version", b"3\n"))
    _atomic_write(path, lambda f: _write_zip(f, entries))


# --------------------------------------------------------------------------------------------------------------
# safetensors

_MAX_HEADER = 100 * 1024 * 1024


def load_safetensors(path):
    """({name: Tensor} in header order, {metadata}) of a safetensors file; every field is checked."""
    kind = sniff(path)
    if kind != "safetensors":
        raise CheckpointError(f"{path}: not a safetensors file")
    mm = _map(path)
    size = len(mm)
    (n,) = struct.unpack_from("<Q", mm, 0)
    if n > _MAX_HEADER or 8 + n > size:
        raise CheckpointError(f"{path}: safetensors header of {n} bytes does not fit the file")
    try:
        header = json.loads(bytes(mm[8:8 + n]).decode("utf-8"), object_pairs_hook=collections.OrderedDict)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: safetensors header is not valid JSON ({e})")
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: safetensors header is not a JSON object")
    base = 8 + n
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: __metadata__ must map strings to strings")
    out = collections.OrderedDict()
    spans = []
    for name, e in header.items():
        if not isinstance(e, dict) or "dtype" not in e or "shape" not in e or "data_offsets" not in e:
            raise CheckpointError(f"{path}: tensor '{name}' lacks dtype, shape or data_offsets")
        d = DTYPES.get(e["dtype"])
        if d is None:
            raise CheckpointError(f"{path}: tensor '{name}' has dtype {e['dtype']!r}, which bevt does not read "
                                  f"(one of {', '.join(DTYPES)})")
        shape, offs = e["shape"], e["data_offsets"]
        if (not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape)
                or not isinstance(offs, list) or len(offs) != 2 or not all(isinstance(o, int) for o in offs)):
            raise CheckpointError(f"{path}: tensor '{name}' has a malformed shape or data_offsets")
        b, e_ = offs
        numel = 1
        for s in shape:
            numel *= s
        if not (0 <= b <= e_ <= size - base) or e_ - b != numel * d.size:
            raise CheckpointError(f"{path}: tensor '{name}' data_offsets [{b}, {e_}] do not fit its shape {shape} "
                                  f"and {d.name} or the file")
        st = _Storage(d, numel, f"{path}: {name}")
        st._source = lambda o=base + b, c=e_ - b: np.frombuffer(mm, dtype=np.uint8, count=c, offset=o)
        out[name] = Tensor(d, shape, storage=st)
        spans.append((b, e_, name))
    spans.sort()
    for (b0, e0, n0), (b1, _e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise CheckpointError(f"{path}: tensors '{n0}' and '{n1}' overlap")
    return out, dict(metadata)


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: Tensor} atomically. The header lists names in the given order; the data is laid out by
    decreasing element size (so every tensor is aligned to its element size), in the given order within a size."""
    items = list(tensors.items())
    for name, t in items:
        if not isinstance(t, Tensor):
            raise CheckpointError(f"{path}: '{name}' is not a tensor")
    layout = sorted(range(len(items)), key=lambda i: -items[i][1].dtype.size)
    offsets = {}
    pos = 0
    for i in layout:
        offsets[i] = (pos, pos + items[i][1].nbytes)
        pos += items[i][1].nbytes
    header = collections.OrderedDict()
    header["__metadata__"] = {str(k): str(v) for k, v in (metadata or {}).items()}
    for i, (name, t) in enumerate(items):
        header[name] = {"dtype": t.dtype.name, "shape": list(t.shape), "data_offsets": list(offsets[i])}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((-len(text)) % 8)

    def write(f):
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for i in layout:
            f.write(_as_bytes(items[i][1].numpy()))
    _atomic_write(path, write)


# --------------------------------------------------------------------------------------------------------------
# helpers shared by the converters

def describe(obj, limit=6):
    """A short description of a top-level checkpoint object for messages."""
    if isinstance(obj, dict):
        keys = list(obj.keys())
        shown = ", ".join(repr(k) for k in keys[:limit]) + (", ..." if len(keys) > limit else "")
        return f"a dict with keys {shown}" if keys else "an empty dict"
    if isinstance(obj, Stub):
        return f"a {obj.stub_name()} object"
    if isinstance(obj, Tensor):
        return f"a single tensor {obj!r}"
    return f"a {type(obj).__name__}"


# Where checkpoints keep their state dict, in the order they are tried: mmcv/mmaction (BEVT, Video Swin),
# PySlowFast (TimeSformer), Swin 2D / timm / DeiT, and DDP-wrapped saves (VideoMAE's "module").
STATE_DICT_KEYS = ("state_dict", "model_state", "model", "module")
_LAYOUTS = {"state_dict": "mmcv checkpoint", "model_state": "PySlowFast checkpoint (TimeSformer)",
            "model": "checkpoint with a 'model' entry (Swin 2D, timm, DeiT)", "module": "checkpoint with a 'module' entry"}


def find_state_dict(obj, path, key=None):
    """(OrderedDict name -> Tensor, description of the layout) of a loaded checkpoint: a plain state dict, the
    entry `key`, the first of STATE_DICT_KEYS holding a dict, or a pickled nn.Module. Anything else, and any
    entry that is not a tensor, is a CheckpointError."""
    if is_module(obj):
        sd, layout = module_state_dict(obj), f"a pickled module ({obj.stub_name()})"
    elif isinstance(obj, dict):
        top = ", ".join(repr(k) for k in list(obj)[:8]) + (", ..." if len(obj) > 8 else "")
        if key is not None:
            if key not in obj:
                raise CheckpointError(f"{path}: no entry '{key}' (top-level keys: {top or 'none'})")
            sd, layout = obj[key], f"entry '{key}' (top-level keys: {top})"
        elif obj and all(isinstance(v, (Tensor, _Unsupported)) for v in obj.values()):
            sd, layout = obj, "plain state dict"
        else:
            found = [k for k in STATE_DICT_KEYS if k in obj and (isinstance(obj[k], dict) or is_module(obj[k]))]
            if not found:
                raise CheckpointError(f"{path}: unknown checkpoint layout: {describe(obj)}; no state dict under "
                                      f"{', '.join(STATE_DICT_KEYS)} (name the entry with --key)")
            sd, layout = obj[found[0]], f"{_LAYOUTS[found[0]]} ({top}) -> '{found[0]}'"
        if is_module(sd):
            sd, layout = module_state_dict(sd), layout + f", a pickled {sd.stub_name()}"
        if not isinstance(sd, dict):
            raise CheckpointError(f"{path}: {layout.split(' (')[0]} is {describe(sd)}, not a state dict")
    else:
        raise CheckpointError(f"{path}: unknown checkpoint layout: {describe(obj)}, not a state dict")
    out = collections.OrderedDict()
    for k, v in sd.items():
        if not isinstance(k, str):
            raise CheckpointError(f"{path}: state dict key {k!r} is not a string")
        if isinstance(v, _Unsupported):
            raise CheckpointError(f"{path}: '{k}' is a {v.what} tensor, which safetensors cannot hold")
        if not isinstance(v, Tensor):
            raise CheckpointError(f"{path}: '{k}' is {describe(v)}, not a tensor (a state dict maps names to "
                                  "tensors; name the entry that holds one with --key)")
        out[k] = v
    if not out:
        raise CheckpointError(f"{path}: the state dict ({layout}) is empty")
    return out, layout


def human_bytes(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0


if __name__ == "__main__":
    sys.exit("bevt_pth is a module; use tools/convert_checkpoint.py or tools/convert_dalle.py")


def fail(prog, exc):
    """Reports a failed conversion in one line on stderr; returns the exit status (2: bad input, 1: OS error)."""
    if isinstance(exc, CheckpointError):
        msg = str(exc).splitlines()[0] if str(exc) else "error"
        print(f"{prog}: {msg}", file=sys.stderr)
        return 2
    print(f"{prog}: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
    return 1
