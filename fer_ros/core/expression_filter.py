"""A stable expression per tracked face: smoothing, hysteresis, ``uncertain``, tracks that end.

Raw labels flicker from frame to frame. Per face id this keeps an exponential moving
average of the calibrated class scores whose weight depends on the time between the
frames' *stamps* (time constant ``time_constant_s``), so a replayed bag behaves like the
live camera whatever the frame rate or the replay speed. The stable label changes only
when another outcome has been proposed for ``hold_s`` without a break; a class is
proposed when its smoothed score is at least ``min_confidence`` and, to replace another
class, leads that class by ``change_margin``. When even the top class is below
``min_confidence``, no class is confident and the proposal is ``uncertain``. Every class
the model card lists is an ordinary label, ``neutral`` included where the model has it (a
resting face is a real state, with its own valence and arousal); ``uncertain`` is never a
stand-in for it. With a card of CK+'s seven classes there is no neutral to propose, and a
resting face may get a confident wrong class (often contempt) instead.
A face not updated for ``gone_after_s`` of stamp time has left: its track ends.

Times are integer nanoseconds on the stamps' clock. An observation that is not newer than
its track's last one (out of order, duplicated) is skipped and counted; the track stays.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from fer_ros.core.affect import affect_table, expected_affect
from fer_ros.core.calibration import UNCALIBRATED, Calibration
from fer_ros.core.face_tracking import Box

UNCERTAIN = "uncertain"  # no class is confident; a label, never a class (neutral is one)
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class FilterSettings:
    time_constant_s: float = 0.5  # smoothing; 0: none (each frame's scores as they are)
    change_margin: float = 0.1  # lead a new class needs over the current one, in score
    hold_s: float = 0.5  # how long a new outcome must be proposed before it is adopted
    min_confidence: float = 0.5  # smoothed calibrated score below which it is uncertain
    gone_after_s: float = 1.0  # a face without an update for this long has left
    calibration: Calibration = UNCALIBRATED  # applied to incoming scores

    def __post_init__(self) -> None:
        for name in ("time_constant_s", "change_margin", "hold_s", "gone_after_s"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], not {self.min_confidence}")


class EventKind(StrEnum):
    APPEARED = "appeared"  # a new track; to_label is its first stable label
    CHANGED = "changed"  # the stable label changed (uncertain counts as a label)
    GONE = "gone"  # the face left the view; from_label was its last label


@dataclass(frozen=True)
class FilterEvent:
    kind: EventKind
    face_id: int
    stamp_ns: int  # stream time at which the event was decided
    from_label: str  # "" for appeared
    to_label: str  # "" for gone
    confidence: float  # smoothed score of to_label (from_label for gone; top class if uncertain)
    valence: float
    arousal: float


@dataclass(frozen=True)
class Observation:
    """One face's expression in one frame, as published (scores sum to 1)."""

    face_id: int
    scores: Sequence[float] | np.ndarray
    box: Box | None = None  # (x, y, width, height), passed through to the state


@dataclass(frozen=True)
class StableState:
    face_id: int
    label: str  # a class name or UNCERTAIN
    confidence: float
    valence: float  # expected valence of the smoothed scores in [-1, 1]; NaN without a table
    arousal: float
    scores: tuple[float, ...]  # smoothed calibrated scores, class order
    since_ns: int  # stamp at which label became stable
    last_seen_ns: int  # stamp of the latest update
    box: Box | None


@dataclass
class _Track:
    face_id: int
    scores: np.ndarray
    last_seen_ns: int
    since_ns: int
    box: Box | None
    label: str = UNCERTAIN
    pending: str | None = None  # outcome being held before adoption
    pending_since_ns: int = 0


@dataclass
class UpdateResult:
    events: list[FilterEvent] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why observations were not applied


class ExpressionFilter:
    """Per-face stable expressions from a stream of per-frame class scores."""

    def __init__(self, classes: Sequence[str], settings: FilterSettings | None = None) -> None:
        if not classes:
            raise ValueError("a filter needs the class names")
        if UNCERTAIN in classes:
            raise ValueError(f"a class named {UNCERTAIN!r} would read as no confident class")
        self.classes = tuple(classes)
        self.settings = settings or FilterSettings()
        try:
            self._affect: np.ndarray | None = affect_table(self.classes)
        except KeyError:
            self._affect = None  # a class without a table entry: no valence/arousal (NaN)
        self._tracks: dict[int, _Track] = {}
        self.now_ns: int | None = None  # latest stamp seen: the stream's clock
        self.stale = 0  # observations skipped as not newer than their track
        self.rejected = 0  # observations skipped as malformed

    # --- input -------------------------------------------------------------------------
    def update(self, stamp_ns: int, observations: Iterable[Observation]) -> UpdateResult:
        """End the tracks not updated for ``gone_after_s`` by ``stamp_ns`` (a face back
        after that long is a new track), then apply one frame's observations; an empty
        frame only advances the clock."""
        result = UpdateResult(events=self.advance(stamp_ns))
        seen: set[int] = set()
        for obs in observations:
            problem = self._apply(stamp_ns, obs, seen, result.events)
            if problem:
                result.skipped.append(problem)
        return result

    def advance(self, now_ns: int) -> list[FilterEvent]:
        """Move the stream clock to ``now_ns`` (never back) and end expired tracks."""
        self.now_ns = now_ns if self.now_ns is None else max(self.now_ns, now_ns)
        limit_ns = round(self.settings.gone_after_s * NS_PER_S)
        events = []
        for face_id in sorted(self._tracks):
            track = self._tracks[face_id]
            if self.now_ns - track.last_seen_ns > limit_ns:
                del self._tracks[face_id]
                events.append(self._event(EventKind.GONE, track, self.now_ns, track.label, ""))
        return events

    def _apply(
        self, stamp_ns: int, obs: Observation, seen: set[int], events: list[FilterEvent]
    ) -> str | None:
        scores = np.asarray(obs.scores, np.float64)
        if scores.shape != (len(self.classes),) or not np.all(np.isfinite(scores)):
            self.rejected += 1
            return f"face {obs.face_id}: {scores.size} scores, expected {len(self.classes)} finite"
        if obs.face_id in seen:
            self.rejected += 1
            return f"face {obs.face_id} appears twice in one frame"
        seen.add(obs.face_id)
        calibrated = self.settings.calibration.apply(scores)
        track = self._tracks.get(obs.face_id)
        if track is None:
            track = _Track(obs.face_id, calibrated, stamp_ns, stamp_ns, obs.box)
            self._tracks[obs.face_id] = track
            self._decide(track, stamp_ns)
            events.append(self._event(EventKind.APPEARED, track, stamp_ns, "", track.label))
            return None
        if stamp_ns <= track.last_seen_ns:
            self.stale += 1
            return f"face {obs.face_id}: stamp not newer than its last one (skipped)"
        tau = self.settings.time_constant_s
        dt_s = (stamp_ns - track.last_seen_ns) / NS_PER_S
        alpha = 1.0 if tau <= 0.0 else 1.0 - math.exp(-dt_s / tau)
        track.scores = track.scores + alpha * (calibrated - track.scores)
        track.last_seen_ns, track.box = stamp_ns, obs.box
        previous = track.label
        if self._decide(track, stamp_ns):
            events.append(self._event(EventKind.CHANGED, track, stamp_ns, previous, track.label))
        return None

    # --- hysteresis ----------------------------------------------------------------------
    def _proposal(self, track: _Track) -> str:
        s = self.settings
        top = int(np.argmax(track.scores))
        if track.scores[top] < s.min_confidence:
            return UNCERTAIN
        if track.label not in (UNCERTAIN, self.classes[top]):
            lead = track.scores[top] - track.scores[self.classes.index(track.label)]
            if lead < s.change_margin:
                return track.label  # not clearly ahead: keep the current class
        return self.classes[top]

    def _decide(self, track: _Track, stamp_ns: int) -> bool:
        """Adopt a proposal held for ``hold_s``; True when the stable label changed."""
        proposal = self._proposal(track)
        if proposal == track.label:
            track.pending = None
            return False
        if proposal != track.pending:
            track.pending, track.pending_since_ns = proposal, stamp_ns
        if stamp_ns - track.pending_since_ns < round(self.settings.hold_s * NS_PER_S):
            return False
        track.label, track.since_ns, track.pending = proposal, stamp_ns, None
        return True

    # --- output ----------------------------------------------------------------------------
    def states(self) -> list[StableState]:
        """Every live track, by face id."""
        return [self._state(self._tracks[i]) for i in sorted(self._tracks)]

    def end_all(self) -> list[FilterEvent]:
        """End every track (e.g. the input's model changed); gone events at the clock."""
        now = self.now_ns or 0
        events = [
            self._event(EventKind.GONE, self._tracks[i], now, self._tracks[i].label, "")
            for i in sorted(self._tracks)
        ]
        self._tracks.clear()
        return events

    def __len__(self) -> int:
        return len(self._tracks)

    def _confidence(self, track: _Track, label: str) -> float:
        if label in self.classes:
            return float(track.scores[self.classes.index(label)])
        return float(track.scores.max())

    def _affect_of(self, track: _Track) -> tuple[float, float]:
        if self._affect is None:
            return math.nan, math.nan
        return expected_affect(track.scores, self._affect)

    def _state(self, track: _Track) -> StableState:
        valence, arousal = self._affect_of(track)
        return StableState(
            face_id=track.face_id,
            label=track.label,
            confidence=self._confidence(track, track.label),
            valence=valence,
            arousal=arousal,
            scores=tuple(float(x) for x in track.scores),
            since_ns=track.since_ns,
            last_seen_ns=track.last_seen_ns,
            box=track.box,
        )

    def _event(
        self, kind: EventKind, track: _Track, stamp_ns: int, from_label: str, to_label: str
    ) -> FilterEvent:
        valence, arousal = self._affect_of(track)
        return FilterEvent(
            kind=kind,
            face_id=track.face_id,
            stamp_ns=stamp_ns,
            from_label=from_label,
            to_label=to_label,
            confidence=self._confidence(track, to_label or from_label),
            valence=valence,
            arousal=arousal,
        )
