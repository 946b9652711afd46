"""ctypes declarations of the reader library (libshard/shard_reader.h).

The library is found, in order, at $SHARD_READER_LIB, next to this package
in a source tree (build/libshard-reader.so), or by the system loader
(libshard-reader.so.0 installed by `make install`).
"""
import ctypes
import ctypes.util
import os

c_u64p = ctypes.POINTER(ctypes.c_uint64)


class Record(ctypes.Structure):
    _fields_ = [
        ("index", ctypes.c_uint64),
        ("tokens", ctypes.c_void_p),
        ("n_tokens", ctypes.c_size_t),
        ("dtype", ctypes.c_uint),
        ("prompt_len", ctypes.c_uint32),
        ("label", ctypes.c_int),
        ("reward", ctypes.c_double),
        ("prompt_id", ctypes.c_uint64),
        ("pair_id", ctypes.c_uint64),
        ("record_id", ctypes.c_uint64),
        ("source_file", ctypes.c_uint32),
        ("source_line", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("ref", ctypes.c_void_p),
    ]


class DatasetOptions(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_int),
        ("select", ctypes.c_uint),
        ("cache_bytes", ctypes.c_uint64),
    ]


class LoaderState(ctypes.Structure):
    _fields_ = [
        ("seed", ctypes.c_uint64),
        ("epoch", ctypes.c_uint64),
        ("position", ctypes.c_uint64),
    ]


class LoaderOptions(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_int),
        ("shuffle", ctypes.c_int),
        ("seed", ctypes.c_uint64),
        ("window", ctypes.c_uint32),
        ("rank", ctypes.c_uint32),
        ("world", ctypes.c_uint32),
        ("worker", ctypes.c_uint32),
        ("workers", ctypes.c_uint32),
        ("readahead", ctypes.c_int),
    ]


class Batch(ctypes.Structure):
    # Buffers as plain addresses: filling them from numpy is then cheap.
    _fields_ = [
        ("tokens", ctypes.c_void_p),
        ("loss_mask", ctypes.c_void_p),
        ("max_tokens", ctypes.c_size_t),
        ("max_len", ctypes.c_size_t),
        ("lengths", ctypes.c_void_p),
        ("prompt_lens", ctypes.c_void_p),
        ("labels", ctypes.c_void_p),
        ("max_records", ctypes.c_size_t),
        ("n_records", ctypes.c_size_t),
        ("n_tokens", ctypes.c_size_t),
        ("truncated", ctypes.c_size_t),
    ]


def _candidates():
    env = os.environ.get("SHARD_READER_LIB")
    if env:
        yield env
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "..", "..", "..", "build", "libshard-reader.so")
    # Installed: PREFIX/lib/python3/dist-packages/shard -> PREFIX/lib.
    yield os.path.join(here, "..", "..", "..", "libshard-reader.so.0")
    found = ctypes.util.find_library("shard-reader")
    if found:
        yield found
    yield "libshard-reader.so.0"


def _load():
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append(str(e))
    raise OSError("libshard-reader not found (set SHARD_READER_LIB): " +
                  "; ".join(errors))


lib = _load()

_P = ctypes.c_void_p
_SIGNATURES = {
    "shard_last_error": (ctypes.c_char_p, []),
    "shard_select_parse": (ctypes.c_int, [ctypes.c_char_p,
                                          ctypes.POINTER(ctypes.c_uint)]),
    "shard_dataset_open_with": (ctypes.c_int, [ctypes.POINTER(_P),
                                               ctypes.c_char_p,
                                               ctypes.POINTER(DatasetOptions)]),
    "shard_dataset_close": (None, [_P]),
    "shard_dataset_count": (ctypes.c_uint64, [_P]),
    "shard_dataset_live_count": (ctypes.c_uint64, [_P]),
    "shard_dataset_live_get": (ctypes.c_int, [_P, ctypes.c_uint64,
                                              ctypes.POINTER(Record)]),
    "shard_dataset_pairs": (ctypes.c_uint64, [_P]),
    "shard_dataset_pair": (ctypes.c_int, [_P, ctypes.c_uint64, c_u64p,
                                          c_u64p]),
    "shard_dataset_errmsg": (ctypes.c_char_p, [_P]),
    "shard_dataset_get": (ctypes.c_int, [_P, ctypes.c_uint64,
                                         ctypes.POINTER(Record)]),
    "shard_record_release": (None, [ctypes.POINTER(Record)]),
    "shard_loader_open": (ctypes.c_int, [ctypes.POINTER(_P), _P,
                                         ctypes.POINTER(LoaderOptions)]),
    "shard_loader_close": (None, [_P]),
    "shard_loader_records": (ctypes.c_uint64, [_P]),
    "shard_loader_next": (ctypes.c_int, [_P, ctypes.POINTER(Record)]),
    "shard_loader_state_get": (None, [_P, ctypes.POINTER(LoaderState)]),
    "shard_loader_seek": (ctypes.c_int, [_P, ctypes.POINTER(LoaderState)]),
    "shard_loader_batch": (ctypes.c_int, [_P, ctypes.POINTER(Batch)]),
    "shard_loader_errmsg": (ctypes.c_char_p, [_P]),
}
for _name, (_res, _args) in _SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args

DATASET_OPTIONS_VERSION = 1
LOADER_OPTIONS_VERSION = 1
