"""`monitoring.quality_schedule`: when the live-quality job runs, its default and what is refused."""
from __future__ import annotations

import pydantic
import pytest

from specs.config.schema import MonitoringConfig


def test_default_is_hourly_at_half_past_beside_the_hourly_drift_job():
    config = MonitoringConfig()
    assert config.quality_schedule == "cron(30 * ? * * *)"
    assert config.drift_schedule == "cron(0 * ? * * *)"


def test_a_cron_expression_is_kept():
    assert MonitoringConfig(quality_schedule="cron(0 6 ? * * *)").quality_schedule == "cron(0 6 ? * * *)"


@pytest.mark.parametrize("value", ["rate(1 hour)", "0 * * * *", ""])
def test_anything_but_a_cron_expression_is_refused_naming_the_field(value):
    with pytest.raises(pydantic.ValidationError) as raised:
        MonitoringConfig(quality_schedule=value)
    (error,) = raised.value.errors()
    assert error["loc"] == ("quality_schedule",)
    assert "cron" in error["msg"]
