"""One safetensors file: checked reading and atomic writing.

The layout (the safetensors format): an 8-byte little-endian header length
N, N bytes of JSON ``{name: {"dtype", "shape", "data_offsets"}, "__metadata__":
{str: str}}``, then the tensors' bytes, which the offsets must tile exactly.

Every field of the header is checked here before the safetensors library sees
the bytes, so a damaged or hostile file raises a ValueError that names the
file and what is wrong, rather than whatever the library raises, and nothing
is read or allocated on the strength of a size the file merely claims.  The
library then does the actual (de)serialisation.  Writes go to a temporary
file in the target's directory, are flushed to disk, and replace the target
with os.replace: a crash mid-save leaves the old file as it was."""
import json
import os
import secrets
import stat
import sys

from .. import _C

# The safetensors library refuses headers above 100 MB; so do we, before reading one.
MAX_HEADER_BYTES = 100_000_000

# safetensors dtype code -> (pyframe dtype name, item size, little-endian NumPy dtype)
_CODES = {
    "BOOL": ("bool", 1, "|b1"), "U8": ("uint8", 1, "|u1"), "I8": ("int8", 1, "|i1"),
    "I16": ("int16", 2, "<i2"), "I32": ("int32", 4, "<i4"), "I64": ("int64", 8, "<i8"),
    "F16": ("float16", 2, "<f2"), "BF16": ("bfloat16", 2, "<u2"),
    "F32": ("float32", 4, "<f4"), "F64": ("float64", 8, "<f8"),
}
_CODE_OF = {name: code for code, (name, _, _) in _CODES.items()}
# codes the format knows but pyframe has no dtype for
_FOREIGN_CODES = ("U16", "U32", "U64", "C64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3",
                  "F6_E3M2", "F4")


def _fail(who, path, what):
    return ValueError("%s: %r %s" % (who, path, what))


# ------------------------------------------------------------------ reading

class SafetensorsFile:
    """What ``read`` returns: ``metadata`` (str -> str), ``specs`` (name ->
    (dtype code, shape)) and ``tensors`` (name -> pf.Tensor, in the file's
    dtypes)."""

    def __init__(self, path, metadata, specs, tensors):
        self.path, self.metadata, self.specs, self.tensors = path, metadata, specs, tensors


def read(path, who):
    """Read and check a safetensors file; every problem with its contents is a ValueError."""
    path = _fspath(path, who)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError("%s: there is no file at %r" % (who, path)) from None
    except IsADirectoryError:
        raise IsADirectoryError("%s: %r is a directory; give the path of a file written by "
                                "save_model or save_weights" % (who, path)) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise _fail(who, path, "is not a safetensors file: it is %d bytes long, shorter than "
                        "the 8-byte header length every safetensors file starts with"
                        % len(head))
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES:
            raise _fail(who, path, "is damaged or not a safetensors file: its first 8 bytes give "
                        "a header of %d bytes, above the format's limit of %d"
                        % (n, MAX_HEADER_BYTES))
        if 8 + n > size:
            raise _fail(who, path, "is truncated or damaged: its header length is %d bytes but "
                        "only %d bytes follow the length field" % (n, size - 8))
        header_bytes = f.read(n)
        specs, metadata, data_len = parse_header(header_bytes, size - 8 - n, path, who)
        f.seek(0)
        whole = f.read()
    if len(whole) != size or whole[8:8 + n] != header_bytes:
        raise _fail(who, path, "changed while it was being read; try again once it is written")
    tensors = _deserialize(whole, specs, path, who)
    return SafetensorsFile(path, metadata, specs, tensors)


def parse_header(header_bytes, data_len, path, who):
    """Check a header against the size of the data section; returns
    (specs, metadata, data_len) or raises ValueError saying what is wrong."""
    try:
        text = header_bytes.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(who, path, "is damaged or not a safetensors file: its header is not UTF-8 "
                    "text (%s)" % e) from None
    if not text.startswith("{"):
        raise _fail(who, path, "is damaged or not a safetensors file: its header does not start "
                    "with '{' (it starts with %r)" % text[:20])
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except _Duplicate as e:
        raise _fail(who, path, "is damaged: its header names %r twice" % e.args[0]) from None
    except (ValueError, RecursionError) as e:
        raise _fail(who, path, "is damaged or not a safetensors file: its header is not valid "
                    "JSON (%s)" % e) from None
    if not isinstance(header, dict):
        raise _fail(who, path, "is damaged: its header is a JSON %s, not an object"
                    % type(header).__name__)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _fail(who, path, "is damaged: its __metadata__ must map strings to strings")
    specs, spans = {}, []
    for name, info in header.items():
        code, shape, (begin, end) = _check_entry(name, info, path, who)
        specs[name] = (code, shape)
        spans.append((begin, end, name))
    spans.sort()
    covered = 0
    for begin, end, name in spans:
        if end > data_len:
            raise _fail(who, path, "is truncated or damaged: tensor %r ends at byte %d of the "
                        "data section, which has only %d bytes" % (name, end, data_len))
        if begin < covered:
            raise _fail(who, path, "is damaged: tensor %r (bytes %d to %d) overlaps the tensor "
                        "before it, which ends at byte %d" % (name, begin, end, covered))
        if begin > covered:
            raise _fail(who, path, "is damaged: bytes %d to %d of the data section belong to no "
                        "tensor (the next one, %r, starts at %d)" % (covered, begin, name, begin))
        covered = end
    if covered != data_len:
        raise _fail(who, path, "is damaged: its tensors cover %d bytes but the data section holds "
                    "%d (trailing bytes)" % (covered, data_len))
    return specs, metadata, data_len


def _check_entry(name, info, path, who):
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise _fail(who, path, "is damaged: header entry %r must be an object with exactly "
                    "'dtype', 'shape' and 'data_offsets'; got %s" % (name, _short(info)))
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if code not in _CODES:
        if code in _FOREIGN_CODES:
            raise _fail(who, path, "holds tensor %r of dtype %s, which pyframe has no dtype for "
                        "(pyframe reads %s)" % (name, code, ", ".join(_CODES)))
        raise _fail(who, path, "is damaged: tensor %r has an unknown dtype %s (known: %s)"
                    % (name, _short(code), ", ".join(_CODES)))
    if not isinstance(shape, list) or len(shape) > _C.MAX_DIMS or \
            not all(_is_int(d) and d >= 0 for d in shape):
        raise _fail(who, path, "is damaged: tensor %r has shape %s; a shape is a list of at most "
                    "%d non-negative integers" % (name, _short(shape), _C.MAX_DIMS))
    if not isinstance(offsets, list) or len(offsets) != 2 or \
            not all(_is_int(o) for o in offsets) or not 0 <= offsets[0] <= offsets[1]:
        raise _fail(who, path, "is damaged: tensor %r has data_offsets %s; expected [begin, end] "
                    "with 0 <= begin <= end" % (name, _short(offsets)))
    count = 1
    for d in shape:
        count *= d
    need = count * _CODES[code][1]
    if offsets[1] - offsets[0] != need:
        raise _fail(who, path, "is damaged: tensor %r (%s, shape %s) needs %d bytes but its "
                    "data_offsets %s span %d" % (name, code, shape, need, offsets,
                                                 offsets[1] - offsets[0]))
    return code, tuple(shape), tuple(offsets)


def _deserialize(whole, specs, path, who):
    """Hand the checked bytes to the safetensors library; tensors as pf.Tensors."""
    import numpy as np
    import safetensors
    try:
        entries = safetensors.deserialize(whole)
    except Exception as e:  # the library's own check failed: report it as a damaged file
        raise _fail(who, path, "could not be read by the safetensors library: %s" % e) from None
    del whole
    tensors = {}
    for name, entry in entries:
        code, shape = specs.get(name, (None, None))
        if entry.get("dtype") != code or tuple(entry.get("shape", ())) != shape:
            raise _fail(who, path, "was read differently by the safetensors library than its "
                        "header says (tensor %r)" % name)
        tensors[name] = _from_bytes(entry["data"], code, shape, np)
    if set(tensors) != set(specs):
        raise _fail(who, path, "was read differently by the safetensors library than its header "
                    "says (tensor names differ)")
    return tensors


def _from_bytes(buf, code, shape, np):
    if code == "BF16":
        ml = _ml_dtypes()
        if ml is not None:
            a = np.frombuffer(buf, dtype=ml.bfloat16).reshape(shape)
            if sys.byteorder != "little":
                a = a.byteswap()
            return _C.from_numpy(a)
        # without ml_dtypes: a bfloat16 is the top half of a float32, so widening is exact
        # and the narrowing cast back rounds nothing (a signalling NaN comes back quiet)
        wide = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
        return _C.from_numpy(wide.view(np.float32).reshape(shape)).astype(_C.bfloat16)
    a = np.frombuffer(buf, dtype=_CODES[code][2]).reshape(shape)
    if a.dtype.byteorder == "<" and sys.byteorder != "little":
        a = a.astype(a.dtype.newbyteorder("="))
    return _C.from_numpy(a)


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _short(v, limit=80):
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + "..."


def _ml_dtypes():
    try:
        import ml_dtypes
    except ImportError:
        return None
    return ml_dtypes


# ------------------------------------------------------------------ writing

def dtype_code(t):
    return _CODE_OF[str(t.dtype)]


def write(path, tensors, metadata, who):
    """Write ``tensors`` (name -> pf.Tensor) and ``metadata`` (str -> str) to
    ``path`` atomically."""
    import numpy as np
    path = _fspath(path, who)
    if "__metadata__" in tensors:
        raise ValueError("%s: '__metadata__' is reserved by the safetensors format and cannot "
                         "name a tensor" % who)
    arrays = {name: _to_le_array(t, np) for name, t in tensors.items()}
    codes = {name: dtype_code(t) for name, t in tensors.items()}
    atomic_write(path, lambda tmp: _serialize_file(arrays, codes, tmp, metadata), who)


def _to_le_array(t, np):
    """The tensor's bytes as a C-contiguous little-endian array (bfloat16 as uint16)."""
    t = t.detach()
    if str(t.device) != "cpu":
        t = t.cpu()
    if t.dtype == _C.bfloat16:
        ml = _ml_dtypes()
        if ml is not None:
            bits = _c_order(np.asarray(t)).view(np.uint16)
        else:
            # exact: float32 holds every bfloat16, whose bits are its top half
            wide = _c_order(np.asarray(t.astype(_C.float32)))
            bits = (wide.view(np.uint32) >> 16).astype(np.uint16)
        return bits.astype("<u2", copy=False)
    a = _c_order(np.asarray(t))
    if a.dtype.byteorder == "=" and sys.byteorder != "little":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a


def _c_order(a):
    # not np.ascontiguousarray, which turns a 0-d array into a 1-d one
    return a if a.flags.c_contiguous else a.copy(order="C")


_SPEC_NAMES = {code: name for code, (name, _, _) in _CODES.items()}


def _serialize_file(arrays, codes, filename, metadata):
    """The safetensors library's writer.  Releases from 0.8 take TensorSpec
    (a pointer and a length; `arrays` keeps the memory alive for the call),
    earlier ones a dict holding the bytes."""
    import safetensors
    spec = getattr(safetensors, "TensorSpec", None)
    if spec is not None:
        flat = {name: spec(dtype=_SPEC_NAMES[codes[name]], shape=list(a.shape),
                           data_ptr=a.ctypes.data, data_len=a.nbytes)
                for name, a in arrays.items()}
    else:
        flat = {name: {"dtype": _SPEC_NAMES[codes[name]], "shape": list(a.shape),
                       "data": a.tobytes()} for name, a in arrays.items()}
    safetensors.serialize_file(flat, filename, metadata=metadata)


def atomic_write(path, write_to, who):
    """Call ``write_to(tmp)`` for a temporary path next to ``path``, flush it to
    disk and move it over ``path``; on any failure remove it and re-raise."""
    if os.path.islink(path):
        path = os.path.realpath(path)    # replace the file the link points to, not the link
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError("%s: %r is a directory; give a file path such as %r"
                                % (who, path, os.path.join(path, "model.safetensors")))
    if not os.path.isdir(directory):
        raise FileNotFoundError("%s: the directory %r does not exist; create it first "
                                "(os.makedirs)" % (who, directory))
    # a short prefix of the name: the temporary name must stay within the name length limit
    tmp = os.path.join(directory, ".%s.%s.tmp" % (os.path.basename(path)[:64],
                                                  secrets.token_hex(6)))
    try:
        write_to(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # keep the old file's mode
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def _fsync_dir(directory):
    # the rename itself reaches the disk when the directory entry does; not every
    # platform can open a directory, and the file is already complete without it
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fspath(path, who):
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError("%s: the path must be a str or os.PathLike; got %s"
                        % (who, type(path).__name__)) from None
