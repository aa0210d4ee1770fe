"""The layered emulator's tables on disk, so a Loihi stage configures in about a second.

The layered emulator reads its integers off a built nengo-loihi model, and building that
model takes seconds (5-7 s on 2 cores for the committed network) at every configure and
after every respawn. The tables are a function of the SNN file, how it is built (input
rate, neuron kind), nengo-loihi's version and this package's table format only, so they
are saved once under a key of all of these and read back on later configures.

Files are plain ``.npz`` arrays plus a JSON description (no pickle: a cache directory
is writable by more than this package). A file that cannot be read is rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from fer_ros.snn.emulator.scan import ChipLayer

log = logging.getLogger(__name__)

FORMAT = 2  # raise when ChipLayer or the way its values are derived changes
DTYPES = {"float32": np.float32, "float64": np.float64}


def table_key(snn_file: Path, *build: object) -> str:
    """Digest of the SNN file, the build arguments, nengo-loihi's version and FORMAT."""
    import nengo_loihi

    digest = hashlib.sha256(snn_file.read_bytes())
    digest.update(repr((build, nengo_loihi.__version__, FORMAT)).encode())
    return digest.hexdigest()[:24]


def save(path: Path, emulator: Any) -> None:
    """Write a LayeredEmulator's tables atomically (a reader never sees half a file)."""
    n_inputs, layers = emulator.n_inputs, emulator.layers
    arrays: dict[str, np.ndarray] = {"vth_out": emulator.vth_out}
    described = []
    for i, layer in enumerate(layers):
        fields: dict[str, Any] = {}
        for f in dataclasses.fields(layer):
            value = getattr(layer, f.name)
            if f.name == "scratch":
                continue  # buffers and constants, made again on first use
            if isinstance(value, np.ndarray):
                arrays[f"{i}.{f.name}"] = value
                fields[f.name] = {"array": True}
            elif hasattr(value, "tocsr"):  # scipy sparse
                csr = value.tocsr()
                for part in ("data", "indices", "indptr"):
                    arrays[f"{i}.{f.name}.{part}"] = getattr(csr, part)
                fields[f.name] = {"csr": list(csr.shape)}
            elif isinstance(value, type):
                fields[f.name] = {"dtype": np.dtype(value).name}
            elif isinstance(value, tuple):
                fields[f.name] = {"tuple": [_plain(v) for v in value]}
            else:
                fields[f.name] = {"value": _plain(value)}
        described.append(fields)
    arrays["description"] = np.frombuffer(
        json.dumps({"n_inputs": n_inputs, "layers": described}).encode(), np.uint8
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)


def load(path: Path) -> tuple[int, list[ChipLayer], np.ndarray]:
    """(n_inputs, layers, vth_out) as :func:`save` wrote them."""
    import scipy.sparse

    with np.load(path, allow_pickle=False) as data:
        description = json.loads(data["description"].tobytes())
        layers = []
        for i, fields in enumerate(description["layers"]):
            values: dict[str, Any] = {}
            for name, how in fields.items():
                if "array" in how:
                    values[name] = data[f"{i}.{name}"]
                elif "csr" in how:
                    parts = [data[f"{i}.{name}.{p}"] for p in ("data", "indices", "indptr")]
                    values[name] = scipy.sparse.csr_matrix(tuple(parts), shape=tuple(how["csr"]))
                elif "dtype" in how:
                    values[name] = DTYPES[how["dtype"]]
                elif "tuple" in how:
                    values[name] = tuple(how["tuple"])
                else:
                    values[name] = how["value"]
            layers.append(ChipLayer(**values))
        return int(description["n_inputs"]), layers, np.array(data["vth_out"])


def _plain(value: object) -> object:
    """JSON-able form of a scalar field (numpy scalars included)."""
    if isinstance(value, np.generic):
        return value.item()
    return value
