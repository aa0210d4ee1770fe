"""The stable expression signal: the ROS-free filter, its calibration and affect tables,
then the filter and reactor nodes on a real rclpy graph, fed by recorded bags of the
demo videos and by the live graph on a photo of five people."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from conftest import REPO, TEST_FPS, wait_for
from node_harness import Probe, destroy, make_node, start
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header, String

from fer_msgs.msg import (
    Expression,
    ExpressionArray,
    ExpressionEvent,
    Face,
    StableExpressionArray,
)
from fer_ros.backends import BackendSettings, create_backend
from fer_ros.bringup.bags import replay, typestore_with
from fer_ros.core.affect import AFFECT, affect_table, expected_affect
from fer_ros.core.calibration import (
    UNCALIBRATED,
    Calibration,
    card_calibration,
    fit_temperature,
    nll,
)
from fer_ros.core.expression_filter import (
    NS_PER_S,
    UNCERTAIN,
    EventKind,
    ExpressionFilter,
    FilterSettings,
    Observation,
)
from fer_ros.core.face_finders import BlazeFaceFinder, CropSettings
from fer_ros.core.face_tracking import IouTracker
from fer_ros.core.model_card import load_model_card
from fer_ros.core.preprocessing import preprocess_crops
from fer_ros.nodes.expression_filter_node import ExpressionFilterNode
from fer_ros.nodes.expression_reactor_node import (
    DEFAULT_REACTIONS,
    ExpressionReactorNode,
    parse_reactions,
)
from fer_ros.nodes.inference_node import expression
from fer_ros.nodes.pipeline_base import ERROR, WARN

CLASSES = ("happy", "contempt", "fear", "surprise", "sadness", "anger", "disgust")
# the retrained models' order: CK+'s seven, then neutral (the cards say which a model has)
CLASSES8 = (*CLASSES, "neutral")
CARDS = (
    "fer_cnn_cpu.json",
    "fer_cnn_rpi.json",
    "fer_snn_loihi.json",
    "fer_snn_loihi_canny.json",
)
S = NS_PER_S


def onehot(label: str, p: float = 0.9, classes: tuple[str, ...] = CLASSES) -> np.ndarray:
    scores = np.full(len(classes), (1.0 - p) / (len(classes) - 1))
    scores[classes.index(label)] = p
    return scores


def feed(flt: ExpressionFilter, frames: list[tuple[float, dict[int, np.ndarray]]]) -> list:
    events = []
    for t_s, faces in frames:
        obs = [Observation(i, s) for i, s in faces.items()]
        events += flt.update(round(t_s * S), obs).events
    return events


def frames(
    label: str,
    t0: float,
    t1: float,
    fps: float,
    face: int = 1,
    p: float = 0.9,
    classes: tuple[str, ...] = CLASSES,
):
    n = round((t1 - t0) * fps)
    return [(t0 + k / fps, {face: onehot(label, p, classes)}) for k in range(n)]


def plain(classes: tuple[str, ...] = CLASSES, **kw) -> ExpressionFilter:
    """No calibration, so scores are what the test feeds."""
    return ExpressionFilter(classes, FilterSettings(**kw))


# --- the filter, ROS-free -----------------------------------------------------------------
def test_smoothing_follows_stamps_not_message_counts():
    tau = 0.4
    results = []
    for fps in (10.0, 30.0, 7.0):
        flt = plain(time_constant_s=tau, hold_s=0.0)
        feed(flt, [(0.0, {1: onehot("happy")})])
        feed(flt, [(k / fps, {1: onehot("sadness")}) for k in range(1, round(fps) + 1)])
        results.append(flt.states()[0].scores)
    # a step from happy to sadness decays as exp(-t/tau) at any frame rate
    expected = onehot("sadness") + (onehot("happy") - onehot("sadness")) * math.exp(-1.0 / tau)
    for scores in results:
        np.testing.assert_allclose(scores, expected, atol=1e-9)


def test_a_change_needs_a_margin_held_for_hold_s():
    flt = plain(time_constant_s=0.0, hold_s=0.5, change_margin=0.2, min_confidence=0.3)
    feed(flt, frames("happy", 0.0, 1.0, 10))
    assert flt.states()[0].label == "happy"
    # fear leads happy by 0.1 < margin: happy stays however long it lasts
    close = np.array([0.35, 0, 0.45, 0, 0.2, 0, 0])
    assert feed(flt, [(1.0 + k / 10, {1: close}) for k in range(20)]) == []
    # fear clearly ahead for 0.4 s, then back to happy: the hold never completes
    assert feed(flt, frames("fear", 3.0, 3.4, 10) + frames("happy", 3.4, 3.6, 10)) == []
    # frame-by-frame flicker never changes the label
    flicker = [(4.0 + k / 10, {1: onehot("fear" if k % 2 else "surprise")}) for k in range(31)]
    assert feed(flt, flicker) == []
    # fear held: one change, decided at the stamp where hold_s was reached
    (event,) = feed(flt, frames("fear", 7.1, 8.1, 10))
    assert (event.kind, event.from_label, event.to_label) == (EventKind.CHANGED, "happy", "fear")
    assert event.stamp_ns == round(7.6 * S)
    assert flt.states()[0].since_ns == round(7.6 * S)


def test_uncertain_when_no_class_is_confident_and_a_new_face_starts_uncertain():
    flt = plain(time_constant_s=0.0, hold_s=0.3, min_confidence=0.5)
    (appeared,) = feed(flt, [(0.0, {4: onehot("happy")})])
    assert (appeared.kind, appeared.to_label, appeared.face_id) == (
        EventKind.APPEARED,
        UNCERTAIN,
        4,
    )
    (became,) = feed(flt, frames("happy", 0.1, 0.5, 10, face=4))
    assert (became.from_label, became.to_label) == (UNCERTAIN, "happy")
    flat = np.full(len(CLASSES), 1 / len(CLASSES))
    events = feed(flt, [(0.5 + k / 10, {4: flat}) for k in range(1, 6)])
    assert [(e.from_label, e.to_label) for e in events] == [("happy", UNCERTAIN)]
    state = flt.states()[0]
    assert state.label == UNCERTAIN and state.confidence == pytest.approx(1 / len(CLASSES))
    # no delay at all: a confident first frame is the first label
    flt = plain(hold_s=0.0)
    (appeared,) = feed(flt, [(0.0, {1: onehot("surprise")})])
    assert appeared.to_label == "surprise"


def test_neutral_is_an_ordinary_class_and_uncertain_only_means_nothing_is_confident():
    flt = plain(CLASSES8, time_constant_s=0.0, hold_s=0.3, min_confidence=0.5)
    feed(flt, frames("neutral", 0.0, 0.5, 10, classes=CLASSES8))
    state = flt.states()[0]
    assert (state.label, state.confidence) == ("neutral", pytest.approx(0.9))
    table = affect_table(CLASSES8)
    expected = expected_affect(onehot("neutral", 0.9, CLASSES8), table)
    assert (state.valence, state.arousal) == pytest.approx(expected)
    assert state.valence > 0 > state.arousal  # calm, mildly pleasant
    # neutral is held and left like any class: a clear smile replaces it after hold_s
    (event,) = feed(flt, frames("happy", 0.5, 1.0, 10, classes=CLASSES8))
    assert (event.from_label, event.to_label) == ("neutral", "happy")
    assert event.stamp_ns == round(0.8 * S)
    # ... and back: neutral is never skipped for uncertain while it is confident
    (event,) = feed(flt, frames("neutral", 1.0, 1.5, 10, p=0.55, classes=CLASSES8))
    assert (event.from_label, event.to_label) == ("happy", "neutral")
    # a weak neutral is not a neutral: below min_confidence nothing is confident
    weak = onehot("neutral", 0.45, CLASSES8)
    (event,) = feed(flt, [(1.5 + k / 10, {1: weak}) for k in range(5)])
    assert (event.from_label, event.to_label) == ("neutral", UNCERTAIN)
    assert flt.states()[0].confidence == pytest.approx(0.45)
    # a confident class against a close neutral needs the margin like any other change
    flt = plain(CLASSES8, time_constant_s=0.0, hold_s=0.0, change_margin=0.2)
    feed(flt, [(0.0, {1: onehot("neutral", 0.9, CLASSES8)})])
    close = np.array([0.55, 0, 0, 0, 0, 0, 0, 0.45])
    assert feed(flt, [(0.1, {1: close})]) == [] and flt.states()[0].label == "neutral"
    # the same seven-class scores still filter with a seven-class card
    flt = plain(time_constant_s=0.0, hold_s=0.0)
    (appeared,) = feed(flt, [(0.0, {1: onehot("contempt")})])
    assert appeared.to_label == "contempt" and len(flt.states()[0].scores) == 7
    with pytest.raises(ValueError, match="uncertain"):
        ExpressionFilter((*CLASSES, UNCERTAIN))


def test_a_face_without_updates_ends_as_gone_and_a_return_is_a_new_track():
    flt = plain(hold_s=0.0, gone_after_s=1.0)
    feed(flt, frames("happy", 0.0, 0.5, 10))
    # empty arrays move the clock: no event until 1 s after the last update
    assert feed(flt, [(0.5 + k / 10, {}) for k in range(10)]) == []
    (gone,) = feed(flt, [(1.5, {})])
    assert (gone.kind, gone.face_id, gone.from_label, gone.to_label) == (
        EventKind.GONE,
        1,
        "happy",
        "",
    )
    assert gone.stamp_ns == round(1.5 * S) and len(flt) == 0
    (again,) = feed(flt, [(2.0, {1: onehot("fear")})])
    assert again.kind is EventKind.APPEARED
    # a gap longer than gone_after_s ends the track even without empty frames in between
    gone, back = feed(flt, [(3.5, {1: onehot("fear")})])
    assert (gone.kind, back.kind) == (EventKind.GONE, EventKind.APPEARED)
    # advance() without input ends tracks the same way (the node's steady-clock path)
    (gone,) = flt.advance(round(4.6 * S))
    assert gone.kind is EventKind.GONE and gone.from_label == "fear"


def test_out_of_order_and_duplicate_stamps_are_skipped_without_losing_the_track():
    flt = plain(time_constant_s=0.5, hold_s=0.0)
    feed(flt, frames("happy", 0.0, 1.0, 10))
    before = flt.states()[0]
    result = flt.update(round(0.5 * S), [Observation(1, onehot("anger"))])  # late frame
    assert result.events == [] and "not newer" in result.skipped[0]
    result = flt.update(round(0.9 * S), [Observation(1, onehot("anger"))])  # duplicate stamp
    assert result.skipped and flt.stale == 2
    assert flt.states() == [before]
    feed(flt, frames("happy", 1.0, 1.5, 10))
    assert flt.states()[0].label == "happy" and flt.states()[0].last_seen_ns == round(1.4 * S)


def test_an_unknown_id_gets_its_own_track_and_bad_scores_are_refused():
    flt = plain(time_constant_s=0.2, hold_s=0.0)
    feed(flt, frames("happy", 0.0, 0.5, 10))
    happy_before = flt.states()[0]
    events = feed(flt, [(0.5, {1: onehot("happy"), 99: onehot("fear")})])
    assert [(e.kind, e.face_id, e.to_label) for e in events] == [(EventKind.APPEARED, 99, "fear")]
    happy, fear = flt.states()
    assert (happy.face_id, happy.label, fear.face_id, fear.label) == (1, "happy", 99, "fear")
    assert happy.since_ns == happy_before.since_ns
    result = flt.update(
        round(0.6 * S),
        [
            Observation(1, [0.5, 0.5]),
            Observation(99, [math.nan] * 7),
            Observation(1, onehot("happy")),
            Observation(1, onehot("happy")),
        ],
    )
    assert len(result.skipped) == 3 and flt.rejected == 3
    assert [s.face_id for s in flt.states()] == [1, 99]


def test_an_empty_array_only_moves_the_clock():
    flt = plain()
    assert flt.update(round(1 * S), []).events == [] and flt.now_ns == S
    feed(flt, frames("happy", 1.0, 1.3, 10))
    assert flt.update(round(1.4 * S), []).events == [] and len(flt) == 1
    flt.update(round(0.2 * S), [])  # a late empty array never moves the clock back
    assert flt.now_ns == round(1.4 * S)


def test_settings_refuse_illegal_values():
    with pytest.raises(ValueError, match="min_confidence"):
        FilterSettings(min_confidence=1.5)
    with pytest.raises(ValueError, match="hold_s"):
        FilterSettings(hold_s=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        Calibration(0.0)


# --- calibration and affect -------------------------------------------------------------
@pytest.mark.parametrize("form", ["log", "linear"])
def test_temperature_fit_recovers_a_known_temperature(form):
    rng = np.random.default_rng(0)
    true_t = 2.5 if form == "log" else 0.2
    logits = rng.normal(0.0, 3.0, (4000, 7))
    if form == "log":
        scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    else:  # normalised positive readouts, as the SNN publishes
        scores = np.maximum(logits, 0.0) + 1e-3
        scores /= scores.sum(1, keepdims=True)
    truth = Calibration(true_t, form).apply(scores)
    labels = np.array([rng.choice(7, p=p) for p in truth])
    fit = fit_temperature(scores, labels, form)
    assert fit.calibration.temperature == pytest.approx(true_t, rel=0.1)
    assert fit.nll_after <= nll(scores, labels, Calibration(true_t, form)) + 1e-9


def test_log_form_at_temperature_one_is_the_identity():
    scores = np.array([[0.7, 0.2, 0.1, 0, 0, 0, 0]])
    np.testing.assert_allclose(UNCALIBRATED.apply(scores), scores, atol=1e-5)
    sharper = Calibration(0.5).apply(scores)
    assert sharper[0, 0] > 0.7 and sharper.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name", CARDS)
def test_every_committed_card_records_its_calibration(name):
    card = load_model_card(name)
    calibration = card_calibration(card)
    assert calibration is not None, f"{name}: python -m fer_ros.training.calibrate --write"
    entry = card.extra["calibration"]
    assert entry["nll_after"] <= entry["nll_before"]
    assert entry["fitted_on"]["test_groups_sha1"] == card.extra["data"]["split"]["test_groups_sha1"]
    assert calibration.form == ("linear" if entry["fitted_on"]["export"] == "snn" else "log")


@pytest.mark.parametrize("name", CARDS)
def test_card_calibration_is_what_the_held_out_groups_give(name, ck_plus_path):
    calibrate = pytest.importorskip("fer_ros.training.calibrate")
    card = load_model_card(name)
    if "snn" in card.files:
        pytest.importorskip("nengo_loihi")
    # the set the calibration was fitted on (in-the-wild photos for the eight-class cards)
    data = ck_plus_path.with_name(card.extra["calibration"]["fitted_on"]["dataset"])
    if not data.is_file():
        pytest.skip(f"{data} not found")
    entry = calibrate.calibration_entry(card, data)
    assert entry["temperature"] == pytest.approx(card.extra["calibration"]["temperature"], abs=1e-3)


def test_affect_table_covers_ck_plus_and_orders_the_classes_plausibly():
    table = affect_table(CLASSES)
    assert table.shape == (7, 2) and np.all(np.abs(table) <= 1.0)
    v = dict(zip(CLASSES, table[:, 0], strict=True))
    a = dict(zip(CLASSES, table[:, 1], strict=True))
    assert v["happy"] > v["surprise"] > 0 > v["contempt"] > v["sadness"]
    assert min(a, key=a.get) == "sadness" and a["surprise"] > a["contempt"]
    assert expected_affect(onehot("anger", 1.0), table) == pytest.approx(AFFECT["anger"])
    assert expected_affect(np.zeros(7), table) == (0.0, 0.0)
    with pytest.raises(KeyError, match="boredom"):
        affect_table(("boredom", "happy"))
    # a model with other classes still filters, without valence/arousal
    flt = ExpressionFilter(("a", "b"), FilterSettings(hold_s=0.0))
    flt.update(0, [Observation(1, [0.9, 0.1])])
    assert flt.states()[0].label == "a" and math.isnan(flt.states()[0].valence)


def test_neutral_sits_near_the_circumplex_origin_from_the_same_source():
    # Warriner et al. (2013) rate the lemma "neutral" too: valence 5.50, arousal 3.45
    assert AFFECT["neutral"] == pytest.approx(((5.50 - 5) / 4, (3.45 - 5) / 4))
    table = affect_table(CLASSES8)
    assert table.shape == (8, 2)
    v = dict(zip(CLASSES8, table[:, 0], strict=True))
    a = dict(zip(CLASSES8, table[:, 1], strict=True))
    # mildly pleasant, calmer than every class but sadness, closer to the origin than any
    assert v["surprise"] > v["neutral"] > 0 > v["disgust"]
    assert a["sadness"] < a["neutral"] < min(a[c] for c in CLASSES if c != "sadness")
    radius = np.hypot(table[:, 0], table[:, 1])
    assert CLASSES8[int(np.argmin(radius))] == "neutral"
    # an eight-class filter has valence and arousal (not NaN); neutral's share of the
    # scores pulls them towards pleasant and calm
    flt = ExpressionFilter(CLASSES8, FilterSettings(hold_s=0.0))
    flt.update(0, [Observation(1, onehot("sadness", 0.45, CLASSES8))])
    seven = expected_affect(onehot("sadness", 0.45), affect_table(CLASSES))
    state = flt.states()[0]
    assert state.label == UNCERTAIN and np.isfinite([state.valence, state.arousal]).all()
    assert state.valence > seven[0] and state.arousal < seven[1]


# --- nodes on a real graph ----------------------------------------------------------------
def stamp(t_s: float) -> Time:
    ns = round(t_s * S)
    return Time(sec=ns // S, nanosec=ns % S)


def array(t_s: float, faces: dict[int, np.ndarray], classes=CLASSES) -> ExpressionArray:
    out = ExpressionArray(
        header=Header(stamp=stamp(t_s), frame_id="camera"), accelerator="cpu", model_id="toy"
    )
    for face_id, scores in faces.items():
        index = int(np.argmax(scores))
        out.expressions.append(
            Expression(
                face_id=face_id,
                roi=RegionOfInterest(x_offset=10 * face_id, y_offset=5, width=60, height=60),
                label=classes[index],
                label_index=index,
                confidence=float(scores[index]),
                class_names=list(classes),
                scores=[float(s) for s in scores],
            )
        )
    return out


GONE_S = 2.0


def test_filter_node_keeps_tracks_through_bad_input_and_ends_them_when_input_stops(ros):
    # gone_after_s above a loaded test process's stalls between the publishes below (the
    # filter carries stream time on with the steady clock when input pauses)
    node = make_node(ros, ExpressionFilterNode, hold_s=0.2, gone_after_s=GONE_S)
    start(node)
    probe = Probe(ros)
    events = probe.listen("expression_events", ExpressionEvent)
    stable = probe.listen("stable_expressions", StableExpressionArray)
    publish = probe.publisher("expressions", ExpressionArray).publish
    for k in range(5):
        publish(array(100 + k / 10, {1: onehot("happy")}))
    publish(array(100.2, {1: onehot("anger")}))  # out of order
    publish(array(100.45, {}))  # empty
    publish(array(100.5, {1: onehot("happy"), 7: onehot("fear")}))  # an id never seen
    publish(array(100.6, {1: onehot("happy", 0.5)[:3]}))  # malformed scores
    publish(array(100.7, {1: onehot("happy")}, classes=(*CLASSES[:-1], "neutral")))
    publish(array(100.8, {1: onehot("happy")}))
    assert wait_for(lambda: len(stable) >= 11)
    last = stable[10]  # the answer to the last input (later ones come from gone tracks)
    assert wait_for(lambda: probe.saw_diagnostic("expression_filter", "expressions skipped", WARN))
    # the toy model has no card: scores as published, and /diagnostics says so
    assert probe.saw_diagnostic("expression_filter", "no calibration for toy", WARN)
    assert [(s.face_id, s.label) for s in last.expressions] == [(1, "happy"), (7, UNCERTAIN)]
    happy = last.expressions[0]
    assert happy.last_seen == stamp(100.8) and happy.since == stamp(100.2)
    assert happy.valence > 0.4 and happy.roi.x_offset == 10
    assert (last.model_id, last.calibration, last.header.stamp) == ("toy", "none", stamp(100.8))
    kinds = [(e.kind, e.face_id, e.from_label, e.to_label) for e in events]
    assert kinds[:3] == [
        ("appeared", 1, "", UNCERTAIN),
        ("changed", 1, UNCERTAIN, "happy"),
        ("appeared", 7, "", UNCERTAIN),
    ]
    # no more input: both faces end on the steady clock, carried on from the last stamp
    assert wait_for(lambda: sum(e.kind == "gone" for e in events) == 2, GONE_S + 5)
    gone = [e for e in events if e.kind == "gone"]
    assert {e.face_id for e in gone} == {1, 7}
    gone_at = [e.header.stamp.sec + e.header.stamp.nanosec / S for e in gone]
    assert all(100.8 + GONE_S <= t < 100.8 + GONE_S + 5.0 for t in gone_at), gone_at
    # the empty array follows the last gone event (the faces may end in separate ticks)
    assert wait_for(lambda: stable[-1].expressions == [], 5)
    node.release()


def test_filter_node_takes_eight_classes_from_the_card_and_reports_neutral(ros, tmp_path):
    card = tmp_path / "toy8.json"
    card.write_text(json.dumps({"model_id": "toy8", "classes": list(CLASSES8)}))
    # gone_after_s far above any stall: the track must not end while the test looks at it
    node = make_node(ros, ExpressionFilterNode, model_card=str(card), hold_s=0.2, gone_after_s=60.0)
    start(node)
    probe = Probe(ros)
    events = probe.listen("expression_events", ExpressionEvent)
    stable = probe.listen("stable_expressions", StableExpressionArray)
    publish = probe.publisher("expressions", ExpressionArray).publish
    for k in range(4):
        publish(array(50 + k / 10, {1: onehot("neutral", 0.9, CLASSES8)}, classes=CLASSES8))
    publish(array(50.4, {1: onehot("happy")}))  # seven classes: not the card's, skipped
    publish(array(50.5, {1: onehot("neutral", 0.9, CLASSES8)}, classes=CLASSES8))
    assert wait_for(lambda: len(stable) >= 6)
    assert wait_for(lambda: probe.saw_diagnostic("expression_filter", "differ", WARN))
    assert wait_for(lambda: len(events) >= 2)
    last = stable[5].expressions[0]
    assert (last.label, tuple(last.class_names)) == ("neutral", CLASSES8)
    assert last.confidence == pytest.approx(0.9) and len(last.scores) == 8
    assert last.valence > 0 > last.arousal  # neutral's place on the circumplex, not NaN
    kinds = [(e.kind, e.from_label, e.to_label) for e in events]
    assert kinds == [("appeared", "", UNCERTAIN), ("changed", UNCERTAIN, "neutral")]
    node.release()


def test_filter_node_refuses_a_missing_model_card(ros, tmp_path):
    node = make_node(ros, ExpressionFilterNode, model_card=str(tmp_path / "none.json"))
    probe = Probe(ros)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert wait_for(lambda: probe.saw_diagnostic("expression_filter", "not found", ERROR))
    destroy(node)


def test_reactor_maps_events_to_reactions_once_per_face(ros):
    node = make_node(ros, ExpressionReactorNode, reactions=["happy:greet", "gone:bye", ""])
    start(node)
    probe = Probe(ros)
    reactions = probe.listen("reaction", String)
    publish = probe.publisher("expression_events", ExpressionEvent).publish

    def event(t_s: float, face: int, kind: str, to: str = "", frm: str = "") -> None:
        publish(
            ExpressionEvent(
                header=Header(stamp=stamp(t_s)), face_id=face, kind=kind, from_label=frm,
                to_label=to, confidence=0.9,
            )
        )  # fmt: skip

    event(1.0, 1, "appeared", UNCERTAIN)
    event(2.0, 1, "changed", "happy", UNCERTAIN)
    event(3.0, 1, "changed", UNCERTAIN, "happy")
    event(4.0, 1, "changed", "happy", UNCERTAIN)  # within repeat_after_s: no second greet
    event(4.5, 5, "changed", "happy", "fear")  # a face never seen appearing still counts
    event(5.0, 5, "changed", "sadness", "happy")  # unmapped
    event(6.0, 1, "gone", "", "happy")
    event(6.5, 1, "appeared", "happy")  # back: a new track is greeted again
    assert wait_for(lambda: len(reactions) == 4)
    assert not wait_for(lambda: len(reactions) > 4, 0.5)
    assert [r.data for r in reactions] == ["greet", "greet", "bye", "greet"]
    node.release()


def test_default_reactions_are_calm_for_neutral_and_silent_for_contempt_and_disgust():
    defaults = parse_reactions(DEFAULT_REACTIONS)
    assert defaults["neutral"] == "idle"  # the resting face: back to idle, nothing more
    assert "contempt" not in defaults and "disgust" not in defaults
    assert UNCERTAIN not in defaults and "appeared" not in defaults


def test_reactor_refuses_a_malformed_mapping(ros):
    with pytest.raises(ValueError, match="not KEY:REACTION"):
        parse_reactions(["happy-greet"])
    with pytest.raises(ValueError, match="twice"):
        parse_reactions(["happy:greet", "happy:wave"])
    node = make_node(ros, ExpressionReactorNode, reactions=["happy"])
    probe = Probe(ros)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert wait_for(lambda: probe.saw_diagnostic("expression_reactor", "KEY:REACTION", ERROR))
    destroy(node)


# --- the demo videos as recorded bags ------------------------------------------------------
def video_expressions(video: Path, every: int = 1) -> list[ExpressionArray]:
    """What the cpu profile's detection and inference publish for the video's frames
    (every ``every``-th one), stamped with the video's own timing: BlazeFace, the IoU
    tracker, the committed ONNX model and the inference node's message builder."""
    card = load_model_card("fer_cnn_cpu.json")
    backend = create_backend("onnxruntime", BackendSettings(card, "onnx", "cpu"))
    finder, tracker = BlazeFaceFinder(CropSettings()), IouTracker()
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    arrays, index = [], 0
    ok, frame = capture.read()
    while ok:
        if index % every == 0:
            t_ns = 10 * S + round(index * S / fps)
            header = Header(stamp=Time(sec=t_ns // S, nanosec=t_ns % S), frame_id="camera")
            out = ExpressionArray(header=header, accelerator="cpu", model_id=card.model_id)
            found = finder.find(frame)
            ids = tracker.update([f.box for f in found])
            if found:
                crops = np.stack([f.crop for f in found])
                batch = preprocess_crops(crops, card.preprocessing, card.canny)
                for face_id, f, scores in zip(ids, found, backend.infer(batch).scores, strict=True):
                    x, y, w, h = f.box
                    roi = RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h)
                    out.expressions.append(expression(Face(face_id=face_id, roi=roi), scores, card))
            arrays.append(out)
        index += 1
        ok, frame = capture.read()
    capture.release()
    backend.close()
    return arrays


def write_bag(arrays: list[ExpressionArray], bag: Path) -> None:
    store = typestore_with([REPO / "fer_msgs" / "msg"])
    with Writer(bag, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection(
            "/expressions", "fer_msgs/msg/ExpressionArray", typestore=store
        )
        for a in arrays:
            t_ns = a.header.stamp.sec * S + a.header.stamp.nanosec
            writer.write(connection, t_ns, serialize_message(a))


def filtered_replay(ros, bag: Path, rate: float) -> tuple[list, list]:
    """Replay a bag of ExpressionArrays through a fresh filter node: (events, stable)."""
    # gone_after_s well above a loaded test process's stalls: a stall in the replay must
    # not end the face's track (the filter carries stream time on with the steady clock).
    # A queue for the whole bag: the replay outruns this process's executor, and an input
    # pushed out of the reader's history would change the course being checked.
    node = make_node(ros, ExpressionFilterNode, gone_after_s=5.0, input_queue_depth=1000)
    start(node)
    probe = Probe(ros, "replay_probe")
    events = probe.listen("expression_events", ExpressionEvent)
    stable = probe.listen("stable_expressions", StableExpressionArray)
    player = rclpy.create_node("player")
    (count,) = replay(player, bag, {"/expressions": "fer_msgs/msg/ExpressionArray"}, rate).values()
    # generous: a loaded CI machine
    assert wait_for(lambda: len(stable) >= count and any(e.kind == "gone" for e in events), 30)
    assert node.inputs.received == count and node.inputs.dropped == 0
    node.release()
    for n in (player, probe.node, node):
        destroy(n)
    return list(events), list(stable)


def labels_over_time(stable: list[StableExpressionArray]) -> list[tuple[float, str, float]]:
    """(stamp s, label, valence) of the one face, per input frame."""
    return [
        (a.header.stamp.sec + a.header.stamp.nanosec / S, a.expressions[0].label,
         a.expressions[0].valence)
        for a in stable
        if a.expressions
    ]  # fmt: skip


@pytest.fixture(scope="module")
def video_bags(media, tmp_path_factory):
    folder = tmp_path_factory.mktemp("expression_bags")
    bags = {}
    # WolfgangLanger at half its 24 FPS: the filter runs on stamps, so fewer frames only
    # sample the same course more coarsely (and halve the detection time here).
    for name, every in (("single_face.mp4", 1), ("WolfgangLanger_Pexels.mp4", 2)):
        bags[name] = folder / name.replace(".", "_")
        write_bag(video_expressions(media / name, every), bags[name])
    return bags


def test_replayed_single_face_video_changes_at_most_twice_and_ends_happy(ros, video_bags):
    events, stable = filtered_replay(ros, video_bags["single_face.mp4"], rate=2.0)
    # one person, one track from the first frame to the end
    assert [e.kind for e in events if e.kind != "changed"] == ["appeared", "gone"]
    changes = [(e.from_label, e.to_label) for e in events if e.kind == "changed"]
    assert 1 <= len(changes) <= 2 and changes[-1][1] == "happy", changes
    # the neutral start reads uncertain, neutral with a model that has that class, or,
    # with a seven-class model (no neutral), as it says with high confidence, contempt
    assert changes[0][0] == UNCERTAIN and changes[0][1] in ("happy", "neutral", "contempt")
    course = labels_over_time(stable)
    assert course[-1][1] == "happy"
    # valence follows the smile (it drops again as the smile fades in the last frames)
    assert np.mean([v for _, label, v in course if label == "happy"]) > 0.3


@pytest.mark.xfail(
    strict=True,
    reason="known limitation of the eight-class models (issue #19 notes): the crying woman, a "
    "hand over her face, reads neutral or happy, not sad (sadness recall in the wild 6 %)",
)
def test_replayed_sad_to_laughing_video_runs_from_uncertain_to_happy(ros, video_bags):
    events, stable = filtered_replay(ros, video_bags["WolfgangLanger_Pexels.mp4"], rate=4.0)
    assert [e.kind for e in events if e.kind != "changed"] == ["appeared", "gone"]
    course = labels_over_time(stable)
    t0, t_end = course[0][0], course[-1][0]
    early = [label for t, label, _ in course if t - t0 < (t_end - t0) / 3]
    # seven-class models (no neutral) read this sad face as a mix: uncertain (or sadness)
    # is what the first third mostly shows; a model with neutral may call it that; no
    # confident happy yet
    assert max(set(early), key=early.count) in (UNCERTAIN, "sadness", "neutral"), early
    assert "happy" not in early
    late = [label for t, label, _ in course if t_end - t < 3.0]
    assert set(late) == {"happy"}, late
    valence = np.array([v for _, _, v in course])
    third = len(valence) // 3
    assert valence[-third:].mean() > 0.3 > valence[:third].mean()


# --- the live graph on five people -----------------------------------------------------------
def test_faces_of_a_looping_photo_keep_separate_tracks_until_the_camera_stops(ros, media, tmp_path):
    from graph_harness import Graph

    from fer_ros.core.profiles import profile_path

    folder = tmp_path / "photo"
    folder.mkdir()
    (folder / "multi_face.jpg").write_bytes((media / "multi_face.jpg").read_bytes())
    graph = Graph(ros, profile_path("cpu"), source=str(folder), loop=True, fps=TEST_FPS)
    node = make_node(ros, ExpressionFilterNode, gone_after_s=GONE_S)
    start(node)
    probe = Probe(ros, "faces_probe")
    events = probe.listen("expression_events", ExpressionEvent)
    stable = probe.listen("stable_expressions", StableExpressionArray)
    graph.manager.bring_up()
    assert wait_for(lambda: len([a for a in stable if len(a.expressions) >= 2]) >= 15, 30)
    graph.nodes["camera"].trigger_deactivate()

    def tracks(kind: str) -> set[int]:
        return {e.face_id for e in list(events) if e.kind == kind}

    # every track ends (the gone events of one stream time can arrive apart)
    assert wait_for(lambda: len(tracks("gone")) >= 2 and tracks("gone") == tracks("appeared"), 10)
    node.release()
    graph.release()
    full = [a for a in stable if len(a.expressions) >= 2]
    ids = [tuple(s.face_id for s in a.expressions) for a in full]
    assert len(set(ids[0])) == len(ids[0]) >= 2 and all(i == ids[0] for i in ids[-10:])
    # each face is its own track: its own box and its own smoothed scores
    last = full[-1].expressions
    assert len({(s.roi.x_offset, s.roi.y_offset) for s in last}) == len(last)
    assert all(s.since.sec > 0 and s.last_seen.sec > 0 for s in last)
    fitted = load_model_card("fer_cnn_cpu.json").extra["calibration"]["temperature"]
    assert full[-1].temperature == pytest.approx(fitted, abs=0.01)  # the cpu card's fit
    assert set(ids[0]) <= tracks("appeared")
    assert sum(e.kind == "gone" for e in events) == len(tracks("gone"))  # each ended once
