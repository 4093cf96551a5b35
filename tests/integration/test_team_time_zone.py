"""The team's time zone (``DefaultTimeZone``) where nothing more particular is saved."""

from __future__ import annotations

from dataclasses import replace

from tests.conftest import AwsStack
from tsunagu.qualification.config import QualificationConfig
from tsunagu.store.qualification import QualificationRepository
from tsunagu.store.tables import bind_tables


def test_a_team_that_saved_no_scoring_sheet_counts_its_daily_caps_in_its_own_zone(
    aws: AwsStack,
) -> None:
    # A team in Berlin that never saved a sheet: its caps reset at Berlin's midnight, not Tokyo's
    berlin = QualificationRepository(
        bind_tables(replace(aws.settings(), default_time_zone="Europe/Berlin"))
    )
    assert berlin.config(fresh=True).scoring.time_zone == "Europe/Berlin"
    config, revision = berlin.config_revision()
    assert (config.scoring.time_zone, revision) == ("Europe/Berlin", 0)
    # A sheet saved keeps the zone it was saved with
    saved = QualificationConfig()
    berlin.save_config(saved)
    assert berlin.config(fresh=True).scoring.time_zone == saved.scoring.time_zone == "Asia/Tokyo"
