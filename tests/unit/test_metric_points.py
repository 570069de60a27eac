"""The fast path of metric-point validation agrees with MetricPointSchema."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from runs_service.models.metric import DatasetType
from runs_service.schemas.ingest import MetricBatchSchema, MetricPointSchema, _plain_point

NAMES = st.sampled_from(
    ["val_acc", "val_auc", "train_loss", "val_cm_tp", "learning_rate", "x" * 129, "", "a\x00b"]
) | st.text(max_size=12)
NUMBERS = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.sampled_from([0, 1, 0.5, 1.5, -1, 3.0, 2**53, 2**53 + 1, True, None, "0.5"])
)
STEPS = st.integers(min_value=-2, max_value=10**6 + 2) | st.sampled_from([1.0, 1.5, True, None])
POINTS = st.fixed_dictionaries(
    {"metric_name": NAMES, "metric_value": NUMBERS, "step": STEPS},
    optional={
        "dataset_type": st.sampled_from(["train", "validation", "bogus", None, 3, {}, []]),
        "client_identifier": st.text(max_size=4) | st.sampled_from([None, 7, "c" * 256]),
        "round_number": st.integers(min_value=-1, max_value=10**6 + 1) | st.just(None),
        "colour": st.just("red"),
        "timestamp": st.sampled_from(
            [
                "2025-11-04T12:00:01.123456+00:00",
                "2025-11-04T14:00:01+02:00",
                "2025-11-04T12:00:01Z",
                "2025-11-04T12:00:01",
                "2025-11-04",
                "0001-01-01T00:00:00+05:00",
                "9999-12-31T23:59:59-01:00",
                "2025-13-01T00:00:00",
                "yesterday",
                "",
                None,
                5,
                True,
            ]
        )
        | st.datetimes(timezones=st.none() | st.timezones()).map(lambda moment: moment.isoformat())
        | st.text(max_size=12),
    },
)


@settings(max_examples=600, deadline=None)
@given(POINTS)
def test_fast_path_accepts_only_what_the_schema_accepts_and_loads_it_the_same(point):
    fast = _plain_point(point)
    if fast is None:
        return  # the schema decides, as MetricPointList does
    assert MetricPointSchema().load(point) == fast


@pytest.mark.parametrize(
    "point",
    [
        {"metric_name": "val_acc", "metric_value": 0.5, "step": 0},
        {"metric_name": "val_cm_tp", "metric_value": 300, "step": 2},
        {"metric_name": "train_loss", "metric_value": -1.5, "step": 0, "dataset_type": "train"},
        {
            "metric_name": "train_loss",
            "metric_value": 0.5,
            "step": 0,
            "client_identifier": "client_0",
            "round_number": 3,
        },
        {
            "metric_name": "val_acc",
            "metric_value": 0.5,
            "step": 0,
            "timestamp": "2025-11-04T12:00Z",
        },
        {"metric_name": "val_acc", "metric_value": 0.5, "step": 0, "timestamp": None},
    ],
)
def test_common_points_take_the_fast_path(point):
    fast = _plain_point(point)
    assert fast is not None
    assert isinstance(fast["metric_value"], float)
    if "dataset_type" in point:
        assert fast["dataset_type"] is DatasetType.TRAIN


def test_a_batch_reports_every_bad_item_by_index():
    batch = {
        "metrics": [
            {"metric_name": "val_acc", "metric_value": 0.5, "step": 0},
            {"metric_name": "val_acc", "metric_value": 1.5, "step": 0},
            {"metric_name": "val_loss", "metric_value": 0.5, "step": -1},
        ]
    }
    with pytest.raises(ValidationError) as raised:
        MetricBatchSchema().load(batch)
    assert set(raised.value.messages["metrics"]) == {1, 2}
