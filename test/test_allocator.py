"""The allocator tuning: a frame-sized buffer allocated again costs no page faults."""

from __future__ import annotations

import subprocess
import sys

import pytest

# 50 "frames", each holding three 4 MiB buffers at once (as a frame's image, message and
# detector input are) and then freeing them; print the minor page faults they took.
FAULTS = """
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from fer_ros.core.allocator import keep_freed_memory
    print(keep_freed_memory(), file=sys.stderr)
frame = [np.ones(1 << 19) for _ in range(3)]  # the first frame maps its pages in any case
del frame
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    frame = [np.ones(1 << 19) for _ in range(3)]  # 4 MiB of float64 each, written
    del frame
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    run = subprocess.run(
        [sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True
    )
    return int(run.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_a_freed_frame_buffer_is_reused_without_page_faults() -> None:
    untuned, tuned = page_faults("default"), page_faults("tuned")
    # 150 buffers of 1024 pages each: by default glibc hands the heap's freed top back to
    # the kernel after every frame, and maps it again for the next
    assert untuned > 50 * 1000, untuned
    assert tuned < 1000, tuned
