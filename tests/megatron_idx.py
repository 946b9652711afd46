"""Independent readers for the tests: Megatron-Core's indexed dataset
(.idx/.bin, read as Megatron's IndexedDataset documents it) and the token
stream of `shard cat --format tokens` (docs/FORMAT.md).  Neither uses the
shard module or libshard.
"""
import struct

import numpy as np

MEGATRON_DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32,
                   5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}


def read_megatron(prefix):
    """Returns (dtype, documents): a list of token arrays per document."""
    with open(prefix + ".idx", "rb") as f:
        idx = f.read()
    if idx[:9] != b"MMIDIDX\x00\x00":
        raise ValueError("bad .idx magic")
    version, = struct.unpack_from("<Q", idx, 9)
    if version != 1:
        raise ValueError("bad .idx version %d" % version)
    code = idx[17]
    seqs, docs = struct.unpack_from("<QQ", idx, 18)
    off = 34
    sizes = np.frombuffer(idx, np.int32, seqs, off)
    off += 4 * seqs
    pointers = np.frombuffer(idx, np.int64, seqs, off)
    off += 8 * seqs
    doc_idx = np.frombuffer(idx, np.int64, docs, off)
    off += 8 * docs
    if off != len(idx):
        raise ValueError(".idx has %d bytes past the document index"
                         % (len(idx) - off))
    dtype = np.dtype(MEGATRON_DTYPES[code])
    bin_ = np.memmap(prefix + ".bin", dtype=dtype, mode="r")
    documents = []
    for d in range(len(doc_idx) - 1):
        parts = [bin_[pointers[s] // dtype.itemsize:
                      pointers[s] // dtype.itemsize + sizes[s]]
                 for s in range(doc_idx[d], doc_idx[d + 1])]
        documents.append(np.concatenate(parts) if parts else
                         np.zeros(0, dtype))
    return dtype, documents, sizes, pointers


def read_token_stream(data):
    """Parses `shard cat --format tokens` output into a list of dicts."""
    if data[:8] != b"\x89STK\r\n\x1a\n":
        raise ValueError("bad token stream magic")
    version, width = struct.unpack_from("<II", data, 8)
    if version != 1 or width != 4:
        raise ValueError("token stream version %d width %d"
                         % (version, width))
    off, records = 16, []
    while True:
        if off + 32 > len(data):
            raise ValueError("token stream truncated at byte %d" % off)
        n, plen, label = struct.unpack_from("<IIB", data, off)
        pair_id, record_id = struct.unpack_from("<QQ", data, off + 16)
        off += 32
        if n == 0xFFFFFFFF:
            if record_id != len(records) or off != len(data):
                raise ValueError("bad token stream trailer")
            return records
        tokens = np.frombuffer(data, "<u4", n, off)
        off += 4 * n
        records.append({"tokens": tokens, "prompt_len": plen,
                        "label": label, "pair_id": pair_id,
                        "record_id": record_id})
