"""enter_segments — once a day (a Schedule): enter the leads each journey's segment trigger
selects, e.g. re_engagement's ``silent_days>=90`` (or a saved segment:
``in_segment=webinar_no_shows``), into every journey that takes entries - a paused one too, as
its event triggers do (lifecycle.takes_entries): its gate holds their mail until the resume.

The day names the entry (``segment:2026-11-22``), so a retried or repeated run enters nobody
twice, and the journey's re-entry policy decides whether a lead still selected next month
enters again. Output: ``{"<journey>": {"selected", "entered"}}``.

Invoked with ``{"start": {"journey_id", "start_id"}}`` (asynchronously, by the admin API), it
runs that start for a segment in the background instead (tsunagu.journeys.start_jobs): it goes
on from where the job got to, and in a new invocation of itself when its time runs short.
Output: the job's progress.

A trigger that reads a saved segment no longer there (MissingSegment) enters nobody in its
journey, and the run fails once every other journey has had its entries, saying which: read as
"a member of no segment", ``in_segment!=customers`` would have entered every lead.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tsunagu import services
from tsunagu.commands import journeys
from tsunagu.errors import MissingSegment
from tsunagu.journeys.lifecycle import enter_leads, takes_entries
from tsunagu.observability import logger, metrics, observed
from tsunagu.segments.filter import Segment
from tsunagu.segments.selection import selected
from tsunagu.settings import get_settings


class SegmentTriggerFailed(Exception):
    """A journey's segment trigger read a segment that is not saved: nobody entered it today."""


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "start" in event:
        return run_start(StartEvent.model_validate(event["start"]), context)
    return enter_segment_triggers()


class StartEvent(BaseModel):
    journey_id: str
    start_id: str


def run_start(asked: StartEvent, context: Any) -> dict[str, Any]:
    ports = services.journey_commands(get_settings())
    job = journeys.run_start(
        ports,
        asked.journey_id,
        asked.start_id,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    progress = job.as_json(now=ports.clock.now())
    logger.info("segment start run", extra=progress)
    return progress


def enter_segment_triggers() -> dict[str, Any]:
    settings = get_settings()
    now = services.clock(settings).now()
    journeys = [
        journey
        for journey in services.journey_repository(settings).journeys()
        if takes_entries(journey) and any(t.kind == "segment" for t in journey.triggers)
    ]
    if not journeys:
        return {}
    leads = services.lead_repository(settings)
    facts = services.segment_facts(settings)  # each lead's events and consent read once
    report: dict[str, Any] = {}
    missing: list[str] = []
    for journey in journeys:
        for trigger in journey.triggers:
            if trigger.kind != "segment" or trigger.segment is None:
                continue
            segment = Segment.parse(trigger.segment)
            try:
                # The leads stream past (a Scan a page at a time, or an import's own leads):
                # only those selected are held, and all of them before any enters, so that a
                # missing segment enters nobody.
                chosen = list(selected(segment, leads, facts, now))
            except MissingSegment as error:
                logger.error(
                    "segment trigger not run",
                    extra={"journey_id": journey.journey_id, "segment": error.name},
                )
                missing.append(f"{journey.journey_id} ({error.message})")
                continue
            results = enter_leads(
                journey,
                chosen,
                cause=f"segment:{now.date().isoformat()}",
                trigger="segment",
                state_machine_arn=services.entry_arn(settings, journey),
                store=services.journey_repository(settings),
                executions=services.executions(settings),
                clock=services.clock(settings),
            )
            # A retried run names the executions it started before: not new entries
            entered = sum(1 for _, result in results if result.entered_now)
            report[journey.journey_id] = {"selected": len(chosen), "entered": entered}
            metrics.add_metric(name="SegmentEntries", unit="Count", value=entered)
    logger.info("segments entered", extra=report)
    if missing:
        raise SegmentTriggerFailed("segment triggers not run: " + "; ".join(missing))
    return report
