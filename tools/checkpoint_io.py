"""What the checkpoint converters share: reading .pth files with torch.load(weights_only=True) and an explicit
allow-list, finding the state dict in the common layouts, and writing safetensors and .pth files atomically.

Run the converters with the Python of bevt's torch: build/bin/bevt-convert does (scripts/setup.sh installs torch,
numpy and safetensors into that virtual environment). Imported by a Python without torch or safetensors, this
module prints one line saying so and exits with status 2.

Reading. torch's weights-only unpickler builds tensors, plain containers and the classes it is told about, and
refuses every other global a pickle names, so a checkpoint cannot run code here. What checkpoints hold besides
tensors is allow-listed here, each by its exact module.name, and nothing named by a file is ever imported:
  * numpy scalars, dtypes and arrays (mmcv's and mmengine's metadata: best scores, histories), when numpy is
    installed;
  * configuration objects that are dicts (mmcv's and mmengine's ConfigDict, addict's Dict, yacs's and fvcore's
    CfgNode) load as OrderedDicts; argparse.Namespace (timm, DeiT) and frozenset as themselves;
  * torch.jit._pickle.restore_type_tag (LibTorch's torch::pickle_save writes it) as an identity function;
  * mmengine's HistoryBuffer, and the module classes of a whole pickled nn.Module (every torch.nn module class
    and OpenAI dall_e's Encoder, EncoderBlock, Decoder, DecoderBlock and Conv2d) load as inert stand-ins that
    only record the state pickle gives them; a module's parameters and buffers are then read from that state.
Anything else is refused in one line that names the global.

Errors a user can cause raise CheckpointError with a one-line message naming the file.
"""
import argparse
import collections
import os
import pickle
import re
import struct
import sys
import tarfile
import warnings
import zipfile


def _prog():
    return os.path.splitext(os.path.basename(sys.argv[0] or ""))[0] or "bevt-convert"


def _missing(what, err=None):
    found = "not found" if err is None else f"cannot be imported: {str(err).splitlines()[0] if str(err) else err}"
    print(f"{_prog()}: needs {what} ({found} in {sys.executable}); run bash scripts/setup.sh, then use "
          "build/bin/bevt-convert", file=sys.stderr)
    sys.exit(2)


with warnings.catch_warnings():
    # torch warns on import when numpy is absent; the converters need numpy only for numpy objects in metadata.
    warnings.filterwarnings("ignore", message=".*NumPy.*")
    try:
        import torch
    except ModuleNotFoundError:
        _missing("torch")
    except (ImportError, OSError) as e:
        _missing("torch", e)
try:
    from safetensors import SafetensorError
    from safetensors import safe_open
    from safetensors.torch import save_file as _st_save_file
except ModuleNotFoundError:
    _missing("the safetensors package")
except ImportError as e:
    _missing("the safetensors package", e)

try:
    import numpy as np
except ImportError:
    np = None


class CheckpointError(Exception):
    """Bad input: the message is one line naming the file and what is wrong."""


def fail(prog, exc):
    """Reports a failed conversion in one line on stderr; returns the exit status (2: bad input, 1: an OS error
    or a bug)."""
    if isinstance(exc, CheckpointError):
        msg = str(exc).splitlines()[0] if str(exc) else "error"
        print(f"{prog}: {msg}", file=sys.stderr)
        return 2
    if isinstance(exc, OSError):
        print(f"{prog}: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    text = " ".join(str(exc).split())
    print(f"{prog}: unexpected error ({type(exc).__name__}: {text}); nothing was written; please report it",
          file=sys.stderr)
    return 1


# --------------------------------------------------------------------------------------------------------------
# dtypes bevt's safetensors files hold, by their safetensors names

DTYPES = collections.OrderedDict([
    ("F64", torch.float64), ("F32", torch.float32), ("F16", torch.float16), ("BF16", torch.bfloat16),
    ("I64", torch.int64), ("I32", torch.int32), ("I16", torch.int16), ("I8", torch.int8), ("U8", torch.uint8),
    ("BOOL", torch.bool)])
_NAMES = {d: n for n, d in DTYPES.items()}


def dtype_name(t):
    return _NAMES.get(t.dtype, str(t.dtype).replace("torch.", ""))


def spec(t):
    return f"{dtype_name(t)} {list(t.shape)}"


def unsupported(t):
    """Why safetensors (as bevt reads it) cannot hold tensor t, or None when it can."""
    if t.is_quantized:
        return f"a quantized tensor ({t.dtype})"
    if t.layout != torch.strided:
        return f"a sparse tensor ({t.layout})"
    if t.is_meta:
        return "a tensor without data (meta device)"
    if t.dtype not in _NAMES:
        return f"a {t.dtype} tensor"
    return None


# --------------------------------------------------------------------------------------------------------------
# inert stand-ins and the allow-list

class PickledObject:
    """An object of a class the converters never import: `pickled_name` ("module.qualname"), the arguments it was
    created with, and the state pickle gave it. Creating one runs nothing but this class."""

    pickled_name = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__.update(pickled_args=args, pickled_state=None)
        return obj

    def __init__(self, *args, **kwargs):  # a call (REDUCE) creates one just as NEWOBJ does
        pass

    def __setstate__(self, state):
        self.__dict__["pickled_state"] = state

    def attributes(self):
        """The attribute dict pickle stored ({} when there is none)."""
        s = self.pickled_state
        if isinstance(s, tuple) and len(s) == 2 and (s[0] is None or isinstance(s[0], dict)):
            merged = dict(s[0] or {})
            if isinstance(s[1], dict):
                merged.update(s[1])
            return merged
        return s if isinstance(s, dict) else {}

    def __repr__(self):
        return f"<{self.pickled_name}>"


class PickledModule(PickledObject):
    """A pickled nn.Module (its _parameters, _buffers and _modules are in attributes())."""


_DALLE_MODULES = ("dall_e.encoder.Encoder", "dall_e.encoder.EncoderBlock", "dall_e.decoder.Decoder",
                  "dall_e.decoder.DecoderBlock", "dall_e.utils.Conv2d")
_DICT_LIKE = ("mmcv.utils.config.ConfigDict", "mmengine.config.config.ConfigDict",
              "addict.addict.Dict", "yacs.config.CfgNode", "fvcore.common.config.CfgNode")
_RECORDS = ("mmengine.logging.history_buffer.HistoryBuffer",)


def _stand_in(base, name):
    return type(name.rsplit(".", 1)[-1], (base,), {"pickled_name": name, "__module__": __name__})


def _torch_module_names():
    names = set()
    for value in vars(torch.nn).values():
        if isinstance(value, type) and issubclass(value, torch.nn.Module):
            names.add(f"{value.__module__}.{value.__qualname__}")
    return sorted(names)


def _numpy_globals():
    if np is None:
        return []
    core = getattr(np, "_core", None) or np.core
    out = [np.dtype, np.ndarray]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out += [(core.multiarray.scalar, f"{mod}.scalar"), (core.multiarray._reconstruct, f"{mod}._reconstruct")]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25: the class of each dtype instance BUILD fills in
    if dtypes is not None:
        out += [c for c in vars(dtypes).values() if isinstance(c, type) and issubclass(c, np.dtype)]
    return out


def _restore_type_tag(value, type_str=None):
    """torch.jit._pickle.restore_type_tag, which LibTorch's torch::pickle_save writes around typed containers:
    Python keeps the value as it is."""
    return value


SAFE_GLOBALS = ([(_stand_in(PickledModule, n), n) for n in _torch_module_names() + list(_DALLE_MODULES)]
                + [(_stand_in(PickledObject, n), n) for n in _RECORDS]
                + [(collections.OrderedDict, n) for n in _DICT_LIKE]
                + [(_restore_type_tag, "torch.jit._pickle.restore_type_tag"), frozenset, argparse.Namespace]
                + _numpy_globals())


def is_module(obj):
    return isinstance(obj, PickledModule)


def module_state_dict(m, prefix="", out=None):
    """What nn.Module.state_dict() returns for a pickled module: parameters, persistent buffers, then children."""
    out = collections.OrderedDict() if out is None else out
    attrs = m.attributes()
    non_persistent = attrs.get("_non_persistent_buffers_set") or set()
    for name, t in (attrs.get("_parameters") or {}).items():
        if t is not None:
            out[prefix + name] = t
    for name, t in (attrs.get("_buffers") or {}).items():
        if t is not None and name not in non_persistent:
            out[prefix + name] = t
    for name, child in (attrs.get("_modules") or {}).items():
        if is_module(child):
            module_state_dict(child, f"{prefix}{name}.", out)
    return out


# --------------------------------------------------------------------------------------------------------------
# reading .pth

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
    # Before the pickle test: a safetensors header length may start with the byte 0x80 (a legacy checkpoint's
    # first 8 bytes, read as a length, are far larger than any file).
    if len(head) >= 9:
        n = struct.unpack("<Q", head[:8])[0]
        if 2 <= n <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    if head[:1] == b"\x80" and len(head) > 2:
        return "legacy"
    try:
        if size > 512 and tarfile.is_tarfile(path):
            return "tar"
    except OSError:
        pass
    return None


def _check_zip(path):
    script = (f"{path}: a TorchScript archive (torch.jit.save), not a torch.save checkpoint; in Python: "
              "torch.save(torch.jit.load(path).state_dict(), 'weights.pth')")
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise CheckpointError(f"{path}: damaged or truncated zip ({e})")
    pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if not pkl:
        if any(n.endswith("/constants.pkl") for n in names):
            raise CheckpointError(script)
        raise CheckpointError(f"{path}: a zip file without <archive>/data.pkl, so not a torch.save checkpoint")
    prefix = pkl[0][:-len("data.pkl")]
    if prefix + "constants.pkl" in names or any(n.startswith(prefix + "code/") for n in names):
        raise CheckpointError(script)


def _refused(path, inner):
    m = re.search(r"GLOBAL (\S+) (?:was not an allowed global|whose module)", inner)
    if m:
        name = m.group(1)
        if name.startswith("numpy.") and np is None:
            raise CheckpointError(f"{path}: holds numpy objects ({name}) and numpy is not installed in "
                                  f"{sys.executable}; run bash scripts/setup.sh, then use build/bin/bevt-convert")
        raise CheckpointError(
            f"{path}: refused: its pickle names {name}, which is neither a tensor, a plain container nor a class "
            "the converters know to be harmless, and loading it could run code; if you trust the file, load it "
            "with torch.load(path, weights_only=False) where that code is installed, torch.save its state dict "
            "and convert that")
    m = re.search(r"Unsupported operand (\d+)", inner)
    if m:
        op = int(m.group(1))
        raise CheckpointError(f"{path}: refused: its pickle uses opcode {bytes([op])!r}, which torch.save does not "
                              "write and torch's weights-only loader does not run")
    raise CheckpointError(f"{path}: refused by torch's weights-only loader ({inner})")


def load_pth(path):
    """The object torch.save stored in `path` (zip or legacy format), read with torch.load(weights_only=True) and
    SAFE_GLOBALS on CPU. Zip files are memory-mapped, so storages that are not converted are never read."""
    kind = sniff(path)
    if kind == "safetensors":
        raise CheckpointError(f"{path}: is a safetensors file, not a PyTorch checkpoint")
    if kind == "tar":
        raise CheckpointError(f"{path}: a tar checkpoint of torch < 0.4; load it with an old torch and save it "
                              "again with torch.save")
    if kind is None:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither the zip format of torch.save nor a "
                              "legacy pickle stream)")
    if kind == "zip":
        _check_zip(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. the notice about pickle protocols other than 2
            with torch.serialization.safe_globals(SAFE_GLOBALS):
                return torch.load(path, map_location="cpu", weights_only=True, mmap=kind == "zip")
    except pickle.UnpicklingError as e:
        text = " ".join(str(e).split())
        m = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation of torch\.load|$)", text)
        if kind == "legacy" and "Only persistent_load of storage" in text:
            raise CheckpointError(
                f"{path}: a whole pickled module in torch's legacy format (torch < 1.6), which "
                "torch.load(weights_only=True) cannot read; if you trust the file, where its code is installed: "
                "torch.save(torch.load(path, weights_only=False).state_dict(), 'weights.pth'), and convert that")
        if m or "Weights only load failed" in text:
            _refused(path, m.group(1) if m else text)
        raise CheckpointError(f"{path}: unreadable pickle data ({text})")
    except RuntimeError as e:
        text = " ".join(str(e).split())
        if "Invalid magic number" in text:
            raise CheckpointError(f"{path}: a Python pickle, not a PyTorch checkpoint (no torch magic number)")
        raise CheckpointError(f"{path}: damaged or truncated checkpoint ({text})")
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, struct.error,
            UnicodeDecodeError, OverflowError, MemoryError, RecursionError, zipfile.BadZipFile) as e:
        text = " ".join(str(e).split())
        raise CheckpointError(f"{path}: cannot be read as a PyTorch checkpoint ({type(e).__name__}: {text})")


def describe(obj, limit=6):
    """A short description of a top-level checkpoint object for messages."""
    if isinstance(obj, dict):
        keys = list(obj.keys())
        shown = ", ".join(repr(k) for k in keys[:limit]) + (", ..." if len(keys) > limit else "")
        return f"a dict with keys {shown}" if keys else "an empty dict"
    if isinstance(obj, PickledObject):
        return f"a {obj.pickled_name} object"
    if isinstance(obj, torch.Tensor):
        return f"a single tensor ({spec(obj)})"
    return f"a {type(obj).__name__}"


# Where checkpoints keep their state dict, in the order they are tried: mmcv/mmaction (BEVT, Video Swin),
# PySlowFast (TimeSformer), Swin 2D / timm / DeiT, and DDP-wrapped saves (VideoMAE's "module").
STATE_DICT_KEYS = ("state_dict", "model_state", "model", "module")
_LAYOUTS = {"state_dict": "mmcv checkpoint", "model_state": "PySlowFast checkpoint (TimeSformer)",
            "model": "checkpoint with a 'model' entry (Swin 2D, timm, DeiT)",
            "module": "checkpoint with a 'module' entry"}


def find_state_dict(obj, path, key=None):
    """(OrderedDict name -> tensor, description of the layout) of a loaded checkpoint: a plain state dict, the
    entry `key`, the first of STATE_DICT_KEYS holding a dict, or a pickled nn.Module. Anything else, and any
    entry that is not a tensor safetensors can hold, is a CheckpointError."""
    if is_module(obj):
        sd, layout = module_state_dict(obj), f"a pickled module ({obj.pickled_name})"
    elif isinstance(obj, dict):
        top = ", ".join(repr(k) for k in list(obj)[:8]) + (", ..." if len(obj) > 8 else "")
        if key is not None:
            if key not in obj:
                raise CheckpointError(f"{path}: no entry '{key}' (top-level keys: {top or 'none'})")
            sd, layout = obj[key], f"entry '{key}' (top-level keys: {top})"
        elif obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            sd, layout = obj, "plain state dict"
        else:
            found = [k for k in STATE_DICT_KEYS if k in obj and (isinstance(obj[k], dict) or is_module(obj[k]))]
            if not found:
                raise CheckpointError(f"{path}: unknown checkpoint layout: {describe(obj)}; no state dict under "
                                      f"{', '.join(STATE_DICT_KEYS)} (name the entry with --key)")
            sd, layout = obj[found[0]], f"{_LAYOUTS[found[0]]} ({top}) -> '{found[0]}'"
        if is_module(sd):
            sd, layout = module_state_dict(sd), layout + f", a pickled {sd.pickled_name}"
        if not isinstance(sd, dict):
            raise CheckpointError(f"{path}: {layout.split(' (')[0]} is {describe(sd)}, not a state dict")
    else:
        raise CheckpointError(f"{path}: unknown checkpoint layout: {describe(obj)}, not a state dict")
    out = collections.OrderedDict()
    for k, v in sd.items():
        if not isinstance(k, str):
            raise CheckpointError(f"{path}: state dict key {k!r} is not a string")
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{path}: '{k}' is {describe(v)}, not a tensor (a state dict maps names to "
                                  "tensors; name the entry that holds one with --key)")
        why = unsupported(v)
        if why:
            raise CheckpointError(f"{path}: '{k}' is {why}, which safetensors cannot hold")
        out[k] = v.detach()
    if not out:
        raise CheckpointError(f"{path}: the state dict ({layout}) is empty")
    return out, layout


# --------------------------------------------------------------------------------------------------------------
# writing, and safetensors

def atomic_write(path, write):
    """Calls write(temporary path) for a file next to `path`, then renames it into place; on any failure the
    temporary file is removed and `path` is untouched."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CheckpointError(f"{path}: the output folder {folder} does not exist")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a folder; give an output file name")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_pth(obj, path):
    """torch.save's zip format, records under archive/ (as torch.save names them when given a file object)."""
    def write(tmp):
        with open(tmp, "wb") as f:
            torch.save(obj, f)
    atomic_write(path, write)


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} with the safetensors package. Views and tensors sharing storage are copied first
    (the format stores each tensor's own bytes)."""
    seen, out = set(), {}
    for name, t in tensors.items():
        t = t.detach().cpu()
        if t.numel():
            whole = (t.storage_offset() == 0 and t.is_contiguous()
                     and t.untyped_storage().nbytes() == t.numel() * t.element_size())
            if not whole or t.untyped_storage().data_ptr() in seen:
                t = t.clone(memory_format=torch.contiguous_format)
            seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    atomic_write(path, lambda tmp: _st_save_file(out, tmp, metadata=meta))


def load_safetensors(path):
    """({name: tensor} in file order, {metadata}) of a safetensors file, read with the safetensors package."""
    if sniff(path) != "safetensors":
        raise CheckpointError(f"{path}: not a safetensors file")
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            # Copies: the package's tensors share one mapping of the file, which torch.save would refuse.
            tensors = collections.OrderedDict((k, f.get_tensor(k).clone()) for k in f.offset_keys())
    except (SafetensorError, OSError, ValueError, TypeError, RuntimeError) as e:
        text = " ".join(str(e).split())
        raise CheckpointError(f"{path}: not a valid safetensors file ({text})")
    return tensors, dict(meta)


def human_bytes(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
