"""What CPU a measurement ran on: every timing in the benchmarks is printed with it.

The machines this package is measured on vary (AVX2 only, or AVX-512 with VNNI, whose
int8 kernels are several times faster), so a figure without its ISA cannot be compared.
"""

from __future__ import annotations

import platform
from pathlib import Path

from fer_ros.core.threads import usable_cores

# Widest first: the first flag a CPU has names its class.
ISA_FLAGS = ("avx512_vnni", "avx512f", "avx2", "avx", "sse4_2", "asimddp", "asimd")


def cpu_isa() -> str:
    """E.g. "AMD EPYC, avx512_vnni, 2 usable cores" (Linux); the machine type elsewhere."""
    model, flags = platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model") and model == platform.machine():
                model = value.strip()
            elif key in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass
    isa = next((flag for flag in ISA_FLAGS if flag in flags), "unknown ISA")
    return f"{model}, {isa}, {usable_cores()} usable cores"
