"""hwsim search: the Pareto front of a seeded Optuna search, the same on any pool, its options and errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from hwsim import api
from hwsim.cli import main
from hwsim.errors import InputError
from hwsim.studies import parallel, search, sweep

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("optuna") is None, reason="the search extra is not installed (pip install 'hwsim[search]')"
)

SMALL = api.load_network("hairnet-cifar10-small")
AREA_PROFILE = """\
name: small-npu
memory:
  internal: {capacity: 64 KB}
  external: {bandwidth: 1 GB/s}
compute:
  matrix: {throughput: 1 TFLOPS}
  vector: {throughput: 10 GFLOPS}
area:
  node: 28 nm
"""
VARY = ["memory.internal.capacity=256B..1MB", "memory.external.bandwidth=0.1GB/s..10GB/s:log:9"]
POINT = ["memory.internal.capacity_bytes", "memory.external.bandwidth_bytes_per_s"]


@pytest.fixture(scope="module")
def hardware(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("search") / "small-npu.yaml"
    path.write_text(AREA_PROFILE)
    return api.load_hardware(path)


def searched(hardware, pool: parallel.Pool | None = None, **options) -> search.SearchResult:
    dimensions = [search.parse_dimension(text, hardware) for text in VARY]
    objectives = [search.objective_named(name, dimensions) for name in ("latency", "area")]
    constraints = [search.parse_constraint("latency<=50ms", dimensions)]
    settings = {"trials": 30, "policy": "strict", "seed": 3} | options
    return search.run(SMALL, hardware, dimensions, objectives, constraints, pool=pool, **settings)


@pytest.mark.slow
def test_the_front_is_every_trial_no_other_beats(hardware, monkeypatch):
    monkeypatch.setattr(search, "POPULATION", 10)  # three generations of NSGA-II
    result = searched(hardware)
    trials = result.trials
    assert list(trials.trial) == list(range(30)) and (trials[search.FRONT] <= (trials.total_s <= 0.05)).all()
    assert 0 < trials[search.FRONT].sum() < len(trials) and (trials.note != "").any()  # 256 B holds no band
    candidates = trials[(trials.note == "") & trials[search.MEETS].fillna(False).astype(bool)]
    costs = candidates[["total_s", "area_mm2"]].to_numpy()
    repeated = trials.duplicated(POINT)
    for k, (_, row) in enumerate(candidates.iterrows()):
        beaten = np.any(np.all(costs <= costs[k], axis=1) & np.any(costs < costs[k], axis=1))
        assert row[search.FRONT] == (not beaten and not repeated[row.name]), row.trial
    assert result.front.total_s.is_monotonic_increasing  # by the first objective
    assert result.front.area_mm2.is_monotonic_decreasing  # two objectives: each better point costs area


def test_the_trials_are_scheduled_as_estimate_schedules_them(hardware):
    result = searched(hardware, trials=6)
    for _, row in result.trials.iterrows():
        point = {d.field: float(row[d.column]) for d in result.dimensions}
        try:
            summary = api.estimate(SMALL, sweep.variant(hardware, point), "strict").summary()
        except InputError as refusal:
            assert row.note == str(refusal)
            continue
        assert (row.total_s, row.area_mm2, row.bytes_moved) == (
            summary["total_time_s"],
            summary["area_mm2"],
            summary["bytes_moved"],
        )


def test_a_search_given_zero_fractions_moves_coded_maps_as_estimate_does(tmp_path):
    # Eyeriss's code packs 16-bit values with their runs of zeros: 32-bit ones would code no smaller
    coding = AREA_PROFILE.replace(
        "external: {bandwidth: 1 GB/s}", "external: {bandwidth: 1 GB/s, map_coding: eyeriss-rlc}"
    )
    coding += "precision: int16\n"
    path = tmp_path / "coding-npu.yaml"
    path.write_text(coding)
    hardware = api.load_hardware(path)
    dimensions = [search.parse_dimension("memory.internal.capacity=8KB..32KB", hardware)]  # maps spill
    objectives = [search.objective_named("latency", dimensions)]

    def trials(**options) -> pd.DataFrame:
        return search.run(SMALL, hardware, dimensions, objectives, [], 4, policy="strict", seed=3, **options).trials

    coded, raw = trials(map_zeros=0.5), trials()
    scheduled = coded.note == ""
    assert scheduled.any() and (coded.bytes_moved[scheduled] < raw.bytes_moved[scheduled]).all()
    for _, row in coded[scheduled].iterrows():
        point = {d.field: float(row[d.column]) for d in dimensions}
        summary = api.estimate(SMALL, sweep.variant(hardware, point), "strict", map_zeros=0.5).summary()
        assert (row.total_s, row.bytes_moved) == (summary["total_time_s"], summary["bytes_moved"])


@pytest.mark.slow  # two worker processes: 2 to 5 s on a loaded 2-core machine
def test_a_seeded_search_gives_the_same_trials_on_two_workers(hardware, monkeypatch):
    monkeypatch.setattr(search, "POPULATION", 10)
    monkeypatch.setattr(sweep, "POOL_MIN_SECONDS", 0.0)
    serial = searched(hardware)
    with parallel.opened(workers=2) as pool:
        assert isinstance(pool, parallel.Processes)
        pd.testing.assert_frame_equal(searched(hardware, pool).trials, serial.trials)
    assert not searched(hardware, seed=4).trials.equals(serial.trials)


def test_tpe_searches_too(hardware):
    result = searched(hardware, sampler="tpe", trials=12)
    assert len(result.trials) == 12 and result.trials[search.FRONT].any()


def test_a_discrete_dimension_takes_its_grid_values_only(hardware):
    dimension = search.parse_dimension(VARY[1], hardware)
    values = set(searched(hardware, trials=20).trials["memory.external.bandwidth_bytes_per_s"])
    assert dimension.grid is not None and values <= set(dimension.grid.values) and len(values) > 1


def test_a_point_proposed_again_is_on_the_front_once(hardware):
    dimensions = [search.parse_dimension(text, hardware) for text in ("memory.internal.capacity=64KB..1MB:3", VARY[1])]
    objectives = [search.objective_named(name, dimensions) for name in ("latency", "memory.internal.capacity")]
    trials = search.run(SMALL, hardware, dimensions, objectives, trials=40, policy="strict", seed=1).trials
    assert trials.duplicated(POINT).any()  # 27 points, 40 trials: the sampler repeats itself
    front = trials[trials[search.FRONT]]
    assert not front.duplicated(POINT).any()
    firsts = trials.drop_duplicates(POINT)
    costs = firsts[["total_s", "memory.internal.capacity_bytes"]].to_numpy()
    on_front = [not np.any(np.all(costs <= c, axis=1) & np.any(costs < c, axis=1)) for c in costs]
    assert list(firsts.trial[on_front]) == sorted(front.trial)


def test_a_point_proposed_again_is_scheduled_once(hardware, monkeypatch):
    scheduled: list[tuple[float, ...]] = []
    schedule_points = sweep.schedule_points

    def counted(base, points):
        scheduled.extend(zip(*(values.tolist() for values in points.values())))
        return schedule_points(base, points)

    monkeypatch.setattr(sweep, "schedule_points", counted)
    dimensions = [search.parse_dimension(text, hardware) for text in ("memory.internal.capacity=64KB..1MB:3", VARY[1])]
    objectives = [search.objective_named("latency", dimensions)]
    trials = search.run(SMALL, hardware, dimensions, objectives, trials=40, policy="strict", seed=1).trials
    distinct = trials.drop_duplicates(POINT)
    assert len(distinct) < len(trials) and sorted(scheduled) == sorted(map(tuple, distinct[POINT].to_numpy().tolist()))
    again = trials.merge(distinct, on=POINT, suffixes=("", "_first"))
    assert (again.total_s == again.total_s_first).all() and (again.note == again.note_first).all()


def test_a_continuous_byte_dimension_is_whole_bytes_within_its_range(hardware):
    capacities = searched(hardware, trials=20).trials["memory.internal.capacity_bytes"]
    assert capacities.dtype == np.int64 and capacities.between(256, 1_000_000).all() and capacities.nunique() > 10


def test_pareto_front_keeps_ties_and_drops_the_dominated():
    costs = np.array([[1.0, 5.0], [2.0, 2.0], [2.0, 2.0], [3.0, 3.0], [5.0, 1.0], [1.0, 6.0]])
    assert search.pareto_front(costs).tolist() == [True, True, True, False, True, False]


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        ("latency<=10ms", 0.01),
        ("energy < 1.5 mJ", 0.0015),
        ("area<=2.5mm2", 2.5),
        ("throughput>=200", 200.0),
        ("memory.internal.capacity<=512KB", 512e3),
    ],
)
def test_constraints_are_read_in_their_units(hardware, text, bound):
    dimensions = [search.parse_dimension(v, hardware) for v in VARY]
    assert search.parse_constraint(text, dimensions).bound == pytest.approx(bound)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--objective", "lateny"],
            "error: --objective: unknown objective 'lateny'; choose from latency, energy, area",
        ),
        (["--objective", "latency", "--constraint", "latency=10ms"], "error: --constraint: 'latency=10ms': expected"),
        (["--objective", "latency", "--constraint", "latency<=10 parsecs"], "unknown unit 'parsecs'"),
        (["--objective", "area"], "error: --objective: paper-accelerator has no area: section"),
        (["--objective", "latency", "--sampler", "grid"], "Invalid value for '--sampler'"),
        # once a ValueError traceback from NumPy, which the samplers seed
        (["--objective", "latency", "--seed", "-1"], "error: --seed: a seed is 0 to 4,294,967,295, not -1"),
        (["--objective", "latency", "--seed", str(2**32)], "error: --seed: a seed is 0 to 4,294,967,295, not"),
    ],
)
def test_bad_options_are_one_line(runner, args, message):
    result = runner.invoke(main, ["search", "hairnet-cifar10-small", "--vary", VARY[0], "--trials", "4", *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_cli_writes_trials_front_and_plot(runner, tmp_path, workdir):
    (tmp_path / "npu.yaml").write_text(AREA_PROFILE)
    args = ["search", "hairnet-cifar10-small", "--hw", "npu.yaml", "--policy", "strict", "--workers", "1"]
    args += sum((["--vary", v] for v in VARY), []) + ["--objective", "latency", "--objective", "energy"]
    args += ["--trials", "12", "-o", "t.csv", "--front", "f.csv", "--plot", "f.png"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    trials, front = pd.read_csv("t.csv", keep_default_na=False), pd.read_csv("f.csv", keep_default_na=False)
    assert len(trials) == 12 and set(front.trial) == set(trials.trial[trials.on_front])
    assert "12 trials (nsga2, seed 0): " in result.output and (tmp_path / "f.png").stat().st_size > 0
