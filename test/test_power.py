"""Power sources against fake sysfs trees (same file layout as the kernel's) and models."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from fer_ros.core.figures import FigureSource
from fer_ros.power import (
    POWER_MODELS,
    Ina3221PowerSource,
    ModelledPowerSource,
    PowerConfig,
    PowerSource,
    PowerUnavailable,
    RaplPowerSource,
    find_rapl_zones,
    power_source_for,
    power_source_for_backend,
)
from fer_ros.power import rapl as rapl_module


class FakeClock:
    """A settable monotonic clock, so that integrals have exact expected values."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str | int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{text}\n")
    return path


# --- RAPL -------------------------------------------------------------------------------------
def rapl_tree(root: Path, energy_uj: int = 0, max_uj: int = 1_000_000) -> Path:
    """/sys/class/powercap with one package zone, its core subzone and a psys zone."""
    base = root / "class" / "powercap"
    for zone, name in (
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:0:0", "core"),
        ("intel-rapl:1", "psys"),
    ):
        write(base / zone / "name", name)
        write(base / zone / "energy_uj", energy_uj)
        write(base / zone / "max_energy_range_uj", max_uj)
    write(base / "intel-rapl" / "enabled", 1)  # the control-type directory has no energy
    return base / "intel-rapl:0" / "energy_uj"


def test_rapl_finds_package_zones_only(tmp_path: Path):
    rapl_tree(tmp_path)
    assert [z.name for z in find_rapl_zones(tmp_path)] == ["package-0"]
    assert [z.name for z in find_rapl_zones(tmp_path, ("core", "psys"))] == ["core", "psys"]


def test_rapl_energy_is_the_counter_difference(tmp_path: Path):
    counter = rapl_tree(tmp_path, energy_uj=5_000)
    source = RaplPowerSource(tmp_path)
    clock = source.clock = FakeClock()
    source.sample()
    write(counter, 5_000 + 300_000)  # 0.3 J in 0.1 s
    clock.now += 0.1
    source.sample()
    figure = source.energy(100.0, 100.1)
    assert figure.source is FigureSource.MEASURED
    assert figure.energy_j == pytest.approx(0.3)
    assert figure.power_w == pytest.approx(3.0)
    assert "intel-rapl:0/energy_uj" in figure.model and "package-0" in figure.model
    # half the interval: linear between readings
    assert source.energy(100.0, 100.05).energy_j == pytest.approx(0.15)


def test_rapl_wraparound_uses_max_energy_range(tmp_path: Path):
    counter = rapl_tree(tmp_path, energy_uj=999_000, max_uj=1_000_000)
    source = RaplPowerSource(tmp_path)
    clock = source.clock = FakeClock()
    source.sample()
    write(counter, 500)  # passed 1 J and restarted: 1000 + 500 uJ
    clock.now += 0.01
    source.sample()
    assert source.energy(100.0, 100.01).energy_j == pytest.approx(0.0015)


def test_rapl_absent_or_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(PowerUnavailable, match="no RAPL zone"):
        RaplPowerSource(tmp_path)
    rapl_tree(tmp_path)

    def denied(path: Path) -> str:  # what a non-root read of energy_uj gets since 5.10
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text().strip()

    monkeypatch.setattr(rapl_module, "_read_text", denied)
    with pytest.raises(PowerUnavailable, match="not readable"):
        RaplPowerSource(tmp_path)


# --- Jetson INA3221 ---------------------------------------------------------------------------
def nano_tree(root: Path, input_mw: int = 3500) -> None:
    """JetPack 4 (L4T 32) Jetson Nano: NVIDIA's ina3221x IIO driver."""
    iio = root / "bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    for channel, (name, mw) in enumerate(
        (("POM_5V_IN", input_mw), ("POM_5V_GPU", 400), ("POM_5V_CPU", 900))
    ):
        write(iio / f"rail_name_{channel}", name)
        write(iio / f"in_power{channel}_input", mw)
        write(iio / f"in_current{channel}_input", mw // 5)
        write(iio / f"in_voltage{channel}_input", 5000)


def orin_tree(root: Path) -> None:
    """JetPack 5/6 Orin Nano: the mainline ina3221 hwmon driver, channels 1..3."""
    hwmon = root / "bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    write(hwmon / "update_interval", 1)
    for channel, (label, mv, ma) in enumerate(
        (("VDD_IN", 5000, 1200), ("VDD_CPU_GPU_CV", 5000, 300), ("NC", 0, 0)), start=1
    ):
        write(hwmon / f"in{channel}_label", label)
        write(hwmon / f"in{channel}_input", mv)
        write(hwmon / f"curr{channel}_input", ma)


def xavier_tree(root: Path) -> None:
    """AGX Xavier (JetPack 4): two monitors and no module input rail."""
    rails = {"1-0040": ("GPU", "CPU", "SOC"), "1-0041": ("CV", "VDDRQ", "SYS5V")}
    for device, names in rails.items():
        iio = root / f"bus/i2c/drivers/ina3221x/{device}/iio:device0"
        for channel, name in enumerate(names):
            write(iio / f"rail_name_{channel}", name)
            write(iio / f"in_power{channel}_input", 1000)


def test_ina3221_iio_layout_reads_the_input_rail(tmp_path: Path):
    nano_tree(tmp_path, input_mw=3500)
    source = Ina3221PowerSource(tmp_path)
    source.clock = FakeClock()
    figure = source.energy(99.5, 100.0)  # constant power, held before the first reading
    assert figure.source is FigureSource.MEASURED
    assert figure.power_w == pytest.approx(3.5) and figure.energy_j == pytest.approx(1.75)
    assert figure.model.startswith("INA3221 POM_5V_IN (")
    assert "ina3221x/6-0040/iio:device0/in_power0_input" in figure.model


def test_ina3221_hwmon_layout_multiplies_volts_and_amps(tmp_path: Path):
    orin_tree(tmp_path)
    source = Ina3221PowerSource(tmp_path)
    clock = source.clock = FakeClock()
    source.sample()  # 6 W
    write(tmp_path / "bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/curr1_input", 2000)
    clock.now += 1.0
    source.sample()  # 10 W
    figure = source.energy(100.0, 101.0)
    assert figure.energy_j == pytest.approx(8.0)  # trapezoid of 6 W -> 10 W over 1 s
    assert "VDD_IN" in figure.model and "sensor window 1 ms" in figure.model


def test_ina3221_named_rails_and_sum_without_input_rail(tmp_path: Path):
    orin_tree(tmp_path)
    named = Ina3221PowerSource(tmp_path, rails=("VDD_CPU_GPU_CV",))
    assert named.energy(0.0, 1.0).power_w == pytest.approx(1.5)
    assert "not the module input rail" in named.description
    with pytest.raises(PowerUnavailable, match=r"\['NC'\] not found"):
        Ina3221PowerSource(tmp_path, rails=("NC",))  # unconnected channels are skipped
    xavier = tmp_path / "xavier"
    xavier_tree(xavier)
    total = Ina3221PowerSource(xavier)
    assert total.energy(0.0, 1.0).power_w == pytest.approx(6.0)


def test_ina3221_absent(tmp_path: Path):
    with pytest.raises(PowerUnavailable, match="no INA3221 rails"):
        Ina3221PowerSource(tmp_path)


# --- models -----------------------------------------------------------------------------------
def test_modelled_figures_are_marked_modelled():
    source = ModelledPowerSource("coral_usb")
    assert isinstance(source, PowerSource)
    figure = source.energy(10.0, 10.004)
    assert figure.source is FigureSource.MODELLED
    assert figure.power_w == 2.0 and figure.energy_j == pytest.approx(0.008)
    assert figure.model.startswith("model coral_usb: 2 W active x busy time (Coral")
    with pytest.raises(ValueError, match="unknown power model"):
        ModelledPowerSource("tpu_v5")


def test_every_model_cites_a_source_or_says_assumption():
    assert {"coral_usb", "ncs2", "jetson_nano_5w", "jetson_nano_10w", "rpi4"} <= set(POWER_MODELS)
    for model in POWER_MODELS.values():
        assert model.active_w > 0 and model.active_source
        if model.idle_w is not None:
            assert model.idle_w < model.active_w and model.idle_source
    assert "ASSUMPTION" in POWER_MODELS["x86_cpu"].active_source


def test_user_supplied_active_power_is_labelled():
    figure = ModelledPowerSource("x86_cpu", active_w=28.0).energy(0.0, 0.5)
    assert figure.energy_j == 14.0 and "user-supplied" in figure.model


# --- factory ----------------------------------------------------------------------------------
def test_auto_measures_only_with_a_sensor_that_covers_the_device(tmp_path: Path):
    rapl_tree(tmp_path)
    root = str(tmp_path)
    # RAPL measures the host CPU package, not a Coral stick: the Coral stays modelled.
    assert power_source_for("auto", model="coral_usb", sysfs_root=root).kind is (
        FigureSource.MODELLED
    )
    assert power_source_for("auto", model="x86_cpu", sysfs_root=root).kind is (
        FigureSource.MEASURED
    )
    assert power_source_for("auto", sysfs_root=root).kind is FigureSource.MEASURED


def test_auto_on_jetson_measures_else_models(tmp_path: Path):
    nano_tree(tmp_path)
    measured = power_source_for("auto", model="jetson_nano_10w", sysfs_root=str(tmp_path))
    assert isinstance(measured, Ina3221PowerSource)
    modelled = power_source_for("auto", model="jetson_nano_10w", sysfs_root=str(tmp_path / "x"))
    assert modelled.kind is FigureSource.MODELLED and "10 W" in modelled.description


def test_measured_without_a_sensor_raises_and_none_is_unavailable(tmp_path: Path):
    with pytest.raises(PowerUnavailable, match="rapl: no RAPL zone"):
        power_source_for("measured", sysfs_root=str(tmp_path))
    with pytest.raises(PowerUnavailable, match="no INA3221 rails"):
        power_source_for("ina3221", sysfs_root=str(tmp_path))
    for source in (
        power_source_for("none"),
        power_source_for("auto", sysfs_root=str(tmp_path)),
    ):
        figure = source.energy(0.0, 1.0)
        assert figure.source is FigureSource.UNAVAILABLE and math.isnan(figure.energy_j)


def test_model_name_as_source_and_config_validation():
    assert power_source_for("rpi4").description.startswith("model rpi4: 6.4 W")
    with pytest.raises(ValueError, match=r"power\.source"):
        PowerConfig(source="guess")
    with pytest.raises(ValueError, match="power model"):
        PowerConfig(model="tpu")
    with pytest.raises(ValueError, match=r"needs power\.model"):
        power_source_for("model")


def board(root: Path, name: str) -> Path:
    path = root / "firmware" / "devicetree" / "base" / "model"
    path.parent.mkdir(parents=True)
    path.write_text(name + "\x00")
    return root


def test_fallback_uses_the_host_model_only_on_that_host(tmp_path: Path):
    pi = board(tmp_path / "pi", "Raspberry Pi 4 Model B Rev 1.4")
    config = PowerConfig(
        source="auto", model="coral_usb", fallback_model="rpi4", sysfs_root=str(pi)
    )
    assert "coral_usb" in power_source_for_backend(config, fallback=False).description
    assert "rpi4" in power_source_for_backend(config, fallback=True).description
    # The same profile on a PC: the Pi's model must not describe the PC's CPU.
    pc = replace(config, sysfs_root=str(tmp_path / "pc"))
    figure = power_source_for_backend(pc, fallback=True, device="cpu")
    assert figure.kind is FigureSource.UNAVAILABLE
    assert "power.fallback_model" in figure.description and "power.model" not in figure.description


def test_a_cpu_profile_gets_its_board_model_only_on_its_board(tmp_path: Path):
    rpi = PowerConfig(model="rpi4", sysfs_root=str(board(tmp_path / "pi", "Raspberry Pi 4 B")))
    assert power_source_for_backend(rpi, fallback=False, device="cpu").kind is (
        FigureSource.MODELLED
    )
    elsewhere = replace(rpi, sysfs_root=str(tmp_path / "pc"))
    assert power_source_for_backend(elsewhere, fallback=False, device="cpu").kind is (
        FigureSource.UNAVAILABLE
    )
    jetson = PowerConfig(model="jetson_nano_10w", fallback_model="jetson_nano_10w")
    on_pc = power_source_for_backend(replace(jetson, sysfs_root=str(tmp_path / "pc")), True, "cpu")
    assert on_pc.kind is FigureSource.UNAVAILABLE  # not the Jetson's 10 W for this PC's CPU


def test_fallback_measures_the_host_when_it_has_a_sensor(tmp_path: Path):
    rapl_tree(tmp_path)
    config = PowerConfig(source="auto", model="coral_usb", sysfs_root=str(tmp_path))
    # The stick's model must not describe the host; the host's own RAPL counter does.
    assert power_source_for_backend(config, fallback=True).kind is FigureSource.MEASURED
    assert power_source_for_backend(config, fallback=False).kind is FigureSource.MODELLED


def test_fallback_onto_another_accelerator_has_no_model(tmp_path: Path):
    config = PowerConfig(model="ncs2", fallback_model="x86_cpu", sysfs_root=str(tmp_path))
    npu = power_source_for_backend(config, fallback=True, device="NPU")
    assert npu.kind is FigureSource.UNAVAILABLE and "NPU" in npu.description
    cpu = power_source_for_backend(config, fallback=True, device="CPUExecutionProvider")
    assert cpu.kind is FigureSource.MODELLED and "x86_cpu" in cpu.description
