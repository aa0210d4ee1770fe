"""Soak: SIGINT / SIGTERM at random moments to ``fer_ros_bringup``, counting what goes wrong.

    nice .venv/bin/python benchmarks/soak_signals.py [--runs 20] [--seed 0] [--group]

Starts ``python -m fer_ros.bringup cpu --source demo --loop`` (and with ``--processes``)
again and again, and sends it SIGINT or SIGTERM (a seeded random choice): ``--runs``
times at a random moment in the first ``--early-s`` seconds after start, and ``--runs``
times at a random moment up to ``--late-s`` seconds after results flow (a summary line
with frames > 0). ``--group`` signals the whole process group, as Ctrl-C in a terminal
does; by default only the bringup process (``kill -INT $!``). Counts per mode and phase:

- tracebacks: runs whose output holds ``Traceback (most recent call last)``;
- hangs: runs not ended ``--hang-s`` seconds after the signal (then killed);
- bad exits: before results flow, a return code other than 0, 130 or an end by the
  signal itself (-2 / -15 here, 130 / 143 in a shell: it came before Python or rclpy
  handled it); after results flow anything but 0 (README, fer_ros_bringup's exit codes);
- orphans: runs that left a process of theirs alive 3 s after bringup ended (each run
  has a session of its own, so every descendant is found by its session id in /proc).

Not a test: about 20-30 minutes on 2 busy cores. Each run gets its own ROS_DOMAIN_ID.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = re.compile(r"\] frames +[1-9]\d*/s")  # the monitor's summary line with results
RESULTS_LINE = re.compile(r"^\[ *[\d.]+ s\] frames ")  # any summary line
TRACEBACK = "Traceback (most recent call last)"
EXPECTED = {"early": {0, 130, 143, -2, -15}, "late": {0}}  # -N: ended by signal N
ORPHAN_GRACE_S = 3.0
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


@dataclass
class Run:
    mode: str
    phase: str
    signal_name: str
    delay_s: float  # after start (early) or after the first results (late)
    rc: int | None = None
    hang: bool = False
    traceback: bool = False
    orphans: list[str] = field(default_factory=list)
    no_results: bool = False  # late phase: results never came
    stop_s: float = 0.0  # signal to exit
    output: list[str] = field(default_factory=list)

    @property
    def bad_exit(self) -> bool:
        return not self.hang and self.rc not in EXPECTED[self.phase]


def session_processes(sid: int) -> list[str]:
    """Live (not zombie) processes of session ``sid``: 'pid command'."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[3]) == sid and fields[0] != "Z":  # field 6: session id
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry} {command[:90]}")
    return found


def one_run(run: Run, args: argparse.Namespace, domain: int) -> Run:
    command = [sys.executable, "-m", "fer_ros.bringup", args.profile, "--source", "demo"]
    command += ["--loop", *(["--processes"] if run.mode == "processes" else [])]
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1")
    env.setdefault("FER_ROS_SHARE", str(REPO))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    start = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own session and group: descendants are findable
    )
    flowing = threading.Event()

    def read() -> None:
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            run.output.append(line)
            if RESULTS.search(line):
                flowing.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if run.phase == "late":
        if not flowing.wait(args.results_timeout_s):
            run.no_results = True
    if process.poll() is None:
        time.sleep(
            max(0.0, run.delay_s - (time.monotonic() - start if run.phase == "early" else 0))
        )
        sent = time.monotonic()
        try:
            if args.group:
                os.killpg(process.pid, SIGNALS[run.signal_name])
            else:
                process.send_signal(SIGNALS[run.signal_name])
        except ProcessLookupError:
            pass
        try:
            run.rc = process.wait(timeout=args.hang_s)
        except subprocess.TimeoutExpired:
            run.hang = True
            run.output.append(
                f"--- hang: alive {args.hang_s:g} s after the signal: "
                + "; ".join(session_processes(process.pid))
            )
            os.killpg(process.pid, signal.SIGKILL)
            run.rc = process.wait()
        run.stop_s = time.monotonic() - sent
    else:
        run.rc = process.wait()  # ended before the signal: counted by its return code
    reader.join(timeout=5)
    deadline = time.monotonic() + ORPHAN_GRACE_S
    while time.monotonic() < deadline and session_processes(process.pid):
        time.sleep(0.2)
    run.orphans = session_processes(process.pid)
    if run.orphans:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    run.traceback = any(TRACEBACK in line for line in run.output)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="per mode and phase")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--modes", default="in-process,processes")
    parser.add_argument("--phases", default="early,late")
    parser.add_argument("--early-s", type=float, default=2.0)
    parser.add_argument("--late-s", type=float, default=3.0)
    parser.add_argument("--hang-s", type=float, default=20.0)
    parser.add_argument("--results-timeout-s", type=float, default=90.0)
    parser.add_argument("--group", action="store_true", help="signal the process group")
    parser.add_argument("--show", type=int, default=60, help="output lines shown per bad run")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    base_domain = os.getpid() % 80  # + 20: domains 20-99, apart from the tests' (100-231, 0-17)
    counts: dict[tuple[str, str], Counter[str]] = {}
    slowest: dict[tuple[str, str], float] = {}  # seconds from the signal to the exit
    began = time.monotonic()
    for mode in args.modes.split(","):
        for phase in args.phases.split(","):
            tally = counts.setdefault((mode, phase), Counter())
            for i in range(args.runs):
                window = args.early_s if phase == "early" else args.late_s
                run = Run(mode, phase, rng.choice(list(SIGNALS)), rng.uniform(0.0, window))
                one_run(run, args, 20 + (base_domain + i) % 80)
                tally["runs"] += 1
                tally["tracebacks"] += run.traceback
                tally["hangs"] += run.hang
                tally["bad exits"] += run.bad_exit
                tally["orphans"] += bool(run.orphans)
                tally["no results"] += run.no_results
                tally[f"rc {run.rc}"] += 1
                slowest[(mode, phase)] = max(slowest.get((mode, phase), 0.0), run.stop_s)
                verdict = [
                    k for k in ("traceback", "hang", "bad_exit", "no_results") if getattr(run, k)
                ]
                verdict += ["orphans"] if run.orphans else []
                print(
                    f"{mode:10s} {phase:5s} {i + 1:2d}: {run.signal_name} at {run.delay_s:.2f} s, "
                    f"rc {run.rc}, ended {run.stop_s:.1f} s after it"
                    + (f"  <-- {', '.join(verdict)}" if verdict else ""),
                    flush=True,
                )
                if verdict:  # its output, less the per-second summaries
                    lines = [x for x in run.output if not RESULTS_LINE.search(x)]
                    for line in lines[-args.show :]:
                        print(f"    | {line}")
                    for orphan in run.orphans:
                        print(f"    orphan: {orphan}")
    print(
        f"\nwall time {time.monotonic() - began:.0f} s; seed {args.seed}; "
        f"signal to {'the process group' if args.group else 'the bringup process'}"
    )
    keys = ("runs", "tracebacks", "hangs", "bad exits", "orphans", "no results")
    header = " ".join(f"{k:>10s}" for k in keys)
    print(f"{'mode':10s} {'phase':5s} {header}  slowest stop  return codes")
    for (mode, phase), tally in counts.items():
        codes = ", ".join(f"{k[3:]} x{v}" for k, v in sorted(tally.items()) if k.startswith("rc "))
        row = " ".join(f"{tally[k]:10d}" for k in keys)
        print(f"{mode:10s} {phase:5s} {row}  {slowest[(mode, phase)]:10.1f} s  {codes}")


if __name__ == "__main__":
    main()
