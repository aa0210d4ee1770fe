"""Freed memory kept for reuse, so that a frame's buffers cost no page faults.

Every frame allocates buffers of hundreds of kB (the decoded image, its message, the
detector's inputs). glibc's malloc serves those from fresh ``mmap`` pages and returns
them to the kernel when freed, so every frame paid page faults and page zeroing again:
measured on the cpu graph, a quarter of its CPU time was in the kernel, mostly
``exc_page_fault`` (docs/performance.md, "Page faults"). The kind of ``mallopt`` tuning
ROS 2's real-time demos apply (e.g. pendulum_control), without their memory locking:
allocations up to :data:`MMAP_THRESHOLD_BYTES` come from malloc's heaps, and freed heap
memory stays with the process for the next frame.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's largest mmap threshold on 64-bit (32 MiB): larger blocks (model weights) are
# still mapped and unmapped on their own.
MMAP_THRESHOLD_BYTES = 32 << 20
# Freed memory at a heap's top is returned to the kernel only beyond this much.
TRIM_THRESHOLD_BYTES = 256 << 20


def keep_freed_memory() -> str:
    """Tune glibc's malloc for this process as above; returns a line for the log."""
    if not sys.platform.startswith("linux"):
        return "allocator: the platform's default"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return "allocator: the C library's default (no mallopt)"
    tuned = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(
        M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES
    )
    if not tuned:
        return "allocator: the C library's default (mallopt refused)"
    return f"allocator: blocks up to {MMAP_THRESHOLD_BYTES >> 20} MiB reused, not unmapped"
