"""The demo's data: a synthetic feature source for `mlops features ingest` and the label events that
the point-in-time dataset builder (`mlops-train dataset`) joins to it.

The feature rows are the training container's synthetic transactions (`mlops_training.synthetic`,
which carries a learnable signal), re-timed into the recent past: event times spread over
`DAYS` days ending `LAST_EVENT_AGE` ago. Each transaction's label (was it fraud?) becomes known a
while after the transaction (`LABEL_DELAY`), as a label event. A share of the records
(`CORRECTED_SHARE`) gets a corrected row after its label was known (the item count fixed up): the
online store then holds the correction, while a point-in-time training set must keep the row each
label saw. Nothing here touches AWS; the demo writes the two tables and ingests the source.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points), except `mlops_training.synthetic`, whose transactions are the demo's
feature source (`generate`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DAYS = 4
"""Days the transactions' event times spread over."""
LAST_EVENT_AGE = timedelta(days=2)
"""How long ago the latest transaction happened (labels and corrections land before now)."""
LABEL_DELAY = (timedelta(minutes=10), timedelta(hours=24))
"""A label is known this long (uniformly drawn) after its transaction's event time."""
CORRECTED_SHARE = 0.1
"""Share of the records (the last ones) that get a corrected row after their label time."""
ISO = "%Y-%m-%dT%H:%M:%SZ"
"""Event times as the demo feature group declares them: String, ISO-8601 UTC."""
DRIFT_AMOUNT_FACTOR = 8.0
"""Drifted transactions are this many times larger than before."""
DRIFT_COUNTRY, DRIFT_COUNTRY_SHARE, DRIFT_COUNTRY_EFFECT = "br", 0.4, 2.0
"""A country the first models never saw, its share of the drifted transactions, and its effect on the
fraud score: the world after the drift has a pattern only a model trained on new data can know."""
DRIFT_SPAN = (timedelta(hours=6), timedelta(hours=1))
"""Drifted transactions happen between these two ages (before now); their labels before now too."""


@dataclass(frozen=True)
class DemoData:
    """Where the demo's source and label events were written, and what they hold."""

    source: Path
    """The feature source (Parquet), every feature of the group, corrections last."""
    labels: Path
    """The label events (Parquet: record_id, label, label_time), one per record."""
    records: int
    corrected: int
    """Records that have a second, corrected row after their label time."""


def generate(*, rows: int, seed: int, label: str, now: datetime) -> tuple[pa.Table, pa.Table, int]:
    """(source, label events, corrected records) for `rows` records; the same arguments give the same tables."""
    from mlops_training import synthetic

    if now.tzinfo is None:
        raise ValueError(f"now={now.isoformat()} has no time zone; give an aware datetime (UTC)")
    base = synthetic.generate(rows, task="binary_classification", seed=seed)
    if label not in base.column_names:
        raise ValueError(f"label {label!r} is not a column of the synthetic data; columns: {', '.join(base.column_names)}")
    rng = np.random.default_rng(seed + 1000)
    first = now.astimezone(UTC) - LAST_EVENT_AGE - timedelta(days=DAYS)
    offsets = np.sort(rng.integers(0, DAYS * 86400, size=rows))
    events = [first + timedelta(seconds=int(s)) for s in offsets]
    low, high = (d.total_seconds() for d in LABEL_DELAY)
    label_times = [e + timedelta(seconds=float(d)) for e, d in zip(events, rng.uniform(low, high, size=rows))]
    source = base.set_column(base.column_names.index("event_time"), "event_time",
                             pa.array([e.strftime(ISO) for e in events], pa.string()))
    ids = source.column("transaction_id")
    label_events = pa.table({
        "record_id": ids,
        "label": pc.cast(source.column(label), pa.float64()),
        "label_time": pa.array(label_times, pa.timestamp("ms", tz="UTC")),
    })
    corrected = int(rows * CORRECTED_SHARE)
    if corrected:
        source = pa.concat_tables([source, _corrections(source, label_times, rng=rng, count=corrected)])
    return source, label_events, corrected


def _corrections(source: pa.Table, label_times: list[datetime], *, rng: np.random.Generator, count: int) -> pa.Table:
    """A corrected row for each of the last `count` records: one to two more items, an hour to a
    day after the label was known."""
    rows = source.num_rows
    picked = source.slice(rows - count, count)
    items = picked.column("n_items").to_numpy(zero_copy_only=False)
    fixed = np.where(np.isnan(items.astype(float)), 1, items).astype(np.int64) + rng.integers(1, 3, size=count)
    times = [label_times[rows - count + i] + timedelta(seconds=float(s))
             for i, s in enumerate(rng.uniform(3600, 86400, size=count))]
    picked = picked.set_column(picked.column_names.index("n_items"), "n_items", pa.array(fixed, pa.int64()))
    return picked.set_column(picked.column_names.index("event_time"), "event_time",
                             pa.array([t.strftime(ISO) for t in times], pa.string()))


def write(directory: Path, *, rows: int, seed: int, label: str, now: datetime) -> DemoData:
    """Generate the demo's data and write it as `source.parquet` and `labels.parquet` in `directory`."""
    source, labels, corrected = generate(rows=rows, seed=seed, label=label, now=now)
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "source.parquet", directory / "labels.parquet"
    pq.write_table(source, paths[0])
    pq.write_table(labels, paths[1])
    return DemoData(source=paths[0], labels=paths[1], records=rows, corrected=corrected)


def drifted(*, rows: int, seed: int, label: str, now: datetime) -> tuple[pa.Table, pa.Table]:
    """(source, label events) of `rows` new transactions after the drift: amounts x8 (prices, not
    fraud, rose: labels follow the amounts before the rise), and a share from a country never seen
    before, which raises the fraud score. So a champion trained before the drift cannot know the new
    country's pattern, and ranks these transactions worse than a model retrained on them. Record ids `d-<seed>-<n>`; event times
    within `DRIFT_SPAN` before `now`, each label known 1 to 30 minutes later (before `now`)."""
    from mlops_training import synthetic

    if now.tzinfo is None:
        raise ValueError(f"now={now.isoformat()} has no time zone; give an aware datetime (UTC)")
    base = synthetic.generate(rows, task="binary_classification", seed=seed)
    if label not in base.column_names:
        raise ValueError(f"label {label!r} is not a column of the synthetic data; columns: {', '.join(base.column_names)}")
    rng = np.random.default_rng(seed + 2000)
    amount = np.clip(base.column("amount").to_numpy() * DRIFT_AMOUNT_FACTOR, 0.0, 100000.0).round(2)
    new_country = rng.random(rows) < DRIFT_COUNTRY_SHARE
    country = np.array([DRIFT_COUNTRY if moved else (c or synthetic.COUNTRIES[0])
                        for moved, c in zip(new_country, base.column("country").to_pylist())])
    items = base.column("n_items").to_numpy(zero_copy_only=False).astype(float)
    age = base.column("account_age_days").to_numpy(zero_copy_only=False).astype(float)
    z = synthetic.signal(amount=base.column("amount").to_numpy(), n_items=np.nan_to_num(items, nan=3.0),
                         country=np.where(new_country, synthetic.COUNTRIES[0], country),
                         hour=base.column("hour").to_numpy(), age=np.nan_to_num(age, nan=400.0))
    z = z + np.where(new_country, DRIFT_COUNTRY_EFFECT - synthetic.signal_country_effect(synthetic.COUNTRIES[0]), 0.0)
    labels = (rng.random(rows) < 1.0 / (1.0 + np.exp(-2.0 * (z - 1.0)))).astype(np.float64)
    oldest, newest = (now.astimezone(UTC) - age_ for age_ in DRIFT_SPAN)
    offsets = np.sort(rng.uniform(0, (newest - oldest).total_seconds(), size=rows))
    events = [oldest + timedelta(seconds=float(s)) for s in offsets]
    label_times = [e + timedelta(seconds=float(d)) for e, d in zip(events, rng.uniform(60, 1800, size=rows))]
    ids = pa.array([f"d-{seed}-{i:06d}" for i in range(rows)], pa.string())
    source = base.drop_columns([label]).set_column(0, "transaction_id", ids)
    source = source.set_column(source.column_names.index("event_time"), "event_time",
                               pa.array([e.strftime(ISO) for e in events], pa.string()))
    source = source.set_column(source.column_names.index("amount"), "amount", pa.array(amount, pa.float64()))
    source = source.set_column(source.column_names.index("country"), "country",
                               pa.array(country.tolist(), pa.string(), mask=pc.is_null(base.column("country")).to_numpy(zero_copy_only=False) & ~new_country))
    source = source.append_column(label, pa.array(labels.astype(np.int64)))
    label_events = pa.table({"record_id": ids, "label": pa.array(labels, pa.float64()),
                             "label_time": pa.array(label_times, pa.timestamp("ms", tz="UTC"))})
    return source, label_events


def point_in_time_rows(dataset: Path, source: Path, *, corrected: int, id_field: str) -> dict[str, int]:
    """How many of the `corrected` records (the source's last rows are their corrections) the built
    dataset holds at their original row, the one their label saw, rather than at the correction."""
    table = pq.read_table(source, columns=[id_field, "event_time"])
    originals = dict(zip(table.column(id_field).to_pylist()[: table.num_rows - corrected],
                         table.column("event_time").to_pylist()[: table.num_rows - corrected]))
    fixed = set(table.column(id_field).to_pylist()[table.num_rows - corrected:])
    as_labelled = 0
    for part in sorted(dataset.glob("*/*.parquet")):
        rows = pq.read_table(part, columns=[id_field, "event_time"]).to_pylist()
        as_labelled += sum(1 for row in rows if row[id_field] in fixed and row["event_time"] == originals[row[id_field]])
    return {"corrected": corrected, "as_labelled": as_labelled}
