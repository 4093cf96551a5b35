"""Saved segments and the lead export, as people use them: a filter tried (count and sample)
before it is saved, saved segments listed, shown with what reads them, changed and deleted (not
while something reads them), and leads exported as CSV — all leads, a filter's or a segment's.
Shared by the CLI (``tsunagu segments ...``, ``tsunagu leads export``) and the admin API
(``/admin/segments``, ``/admin/leads/export``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from tsunagu.clock import Clock, isoformat
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, allowed, recorded
from tsunagu.commands.definitions import read_only, unread
from tsunagu.errors import AlreadyExists, ConcurrentUpdate, FieldError, NotFound, ValidationFailed
from tsunagu.journeys.model import Journey, StoredGraph, branch_cases, published_graph_key
from tsunagu.leads.export import ExportedLeads, ExportEncoding, export_leads
from tsunagu.leads.model import Lead
from tsunagu.segments.filter import MAX_FILTER, SEGMENT_NAME, Facts, Segment
from tsunagu.segments.saved import MAX_DESCRIPTION, SavedSegment, checked, reading_saved
from tsunagu.segments.selection import Leads, Preview, every_lead, preview, selected


class SegmentStore(Protocol):
    def get_segment(self, name: str) -> SavedSegment | None: ...

    def segments(self) -> list[SavedSegment]: ...

    def save_segment(self, segment: SavedSegment) -> None: ...

    def delete_segment(self, name: str, version: int) -> None: ...


class JourneyReader(Protocol):
    def journeys(self) -> list[Journey]: ...

    def published_graph(self, journey_id: str) -> StoredGraph | None: ...

    def graph(self, journey_id: str, which: str) -> StoredGraph | None: ...

    def draft_graphs(self) -> list[StoredGraph]: ...


@dataclass(frozen=True)
class SegmentCommands:
    segments: SegmentStore
    leads: Leads
    facts: Callable[[], Facts]
    """A fresh reader of events, consent and imports for one evaluation."""
    journeys: JourneyReader
    audit: AuditLog
    clock: Clock
    import_exists: Callable[[str], bool] = lambda import_id: False
    """Whether an import of that id was ever started (False: none, or a stack without imports):
    a filter naming one that was not is refused (tsunagu.segments.saved.missing_import)."""


def resolve(ports: SegmentCommands, text: str, field: str = "segment") -> Segment:
    """A saved segment's filter when ``text`` is a segment's name, else ``text`` as a filter
    (refused when it reads a segment or an import that does not exist)."""
    if SEGMENT_NAME.match(text):
        saved = ports.segments.get_segment(text)
        if saved is None:
            known = ", ".join(s.name for s in ports.segments.segments()) or "none saved"
            raise NotFound(f"no segment {text!r} (segments: {known})")
        return saved.segment
    return reading_saved(
        text,
        lambda name: ports.segments.get_segment(name) is not None,
        field,
        import_exists=ports.import_exists,
    )


def list_segments(ports: SegmentCommands, actor: Actor) -> list[SavedSegment]:
    allowed(ports.audit, ports.clock, actor, "segments.list", "segments")
    return ports.segments.segments()


def try_filter(ports: SegmentCommands, actor: Actor, text: str) -> Preview:
    """How many leads a filter (or a saved segment's name) selects now, and the first of them:
    what people look at before they save it."""
    allowed(ports.audit, ports.clock, actor, "segments.preview", "segments")
    return preview(resolve(ports, text, "filter"), ports.leads, ports.facts(), ports.clock.now())


class SegmentDocument(BaseModel):
    """A saved segment as the admin API answers it (``GET /admin/segments/{name}``, ``tsunagu
    segments show --json``) and takes it back (``PUT``/``POST``, ``segments save --file``): what
    a person sets, its version, and (read-only: a save ignores them) who saved it when, who it
    selects now and what reads it - never settable, so a save cannot fake a count."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=63)
    filter: str = Field(
        min_length=1,
        max_length=MAX_FILTER,
        description="Conditions joined by commas (tsunagu.segments.filter):"
        " `stage=lead,score>=50`.",
    )
    description: str | None = Field(
        default=None,
        max_length=MAX_DESCRIPTION,
        description='Left out, a change keeps the segment\'s own (`""` clears it); a new segment'
        " has none.",
    )
    exclude_from_marketing: bool | None = Field(
        default=None,
        description="A global exclusion: no marketing mail goes to the leads it selects. Left"
        " out, a change keeps what the segment has (a new segment is not excluded).",
    )
    version: int | None = Field(
        default=None,
        ge=1,
        description="1 when created, one more each save. Sent back with a save: the version"
        " read, which the save changes only if nobody saved it since (409 otherwise, nothing"
        " stored); absent: create it.",
    )
    by: str | None = read_only("Who saved this version.")
    at: str | None = read_only("When this version was saved.", instant=True)
    count: int | None = read_only("How many leads it selects now (GET of one segment).")
    sample: list[dict[str, Any]] | None = read_only(
        "The first leads it selects now, by score (GET of one segment)."
    )
    used_by: list[str] | None = read_only(
        "What reads it: other segments, journeys' triggers and branches (GET of one segment)."
    )


def as_saved(body: dict[str, Any]) -> dict[str, Any]:
    """A segment as GET answered it, or only what a person sets, made ready to save: the one
    rule the admin API's save and the CLI's ``segments save --file`` read it by. Its read-only
    fields go unread, whatever they say; any other field a segment has not is still refused
    when it is validated as a :class:`SegmentDocument`."""
    return unread(SegmentDocument, body)


@dataclass(frozen=True)
class ShownSegment:
    segment: SavedSegment
    preview: Preview
    used_by: list[str]


def show(ports: SegmentCommands, actor: Actor, name: str) -> ShownSegment:
    allowed(ports.audit, ports.clock, actor, "segments.list", f"segment:{name}")
    saved = _find(ports, name)
    found = preview(saved.segment, ports.leads, ports.facts(), ports.clock.now())
    return ShownSegment(saved, found, used_by(ports, name))


def save(
    ports: SegmentCommands,
    actor: Actor,
    name: str,
    filter_text: str,
    *,
    description: str | None = None,
    exclude_from_marketing: bool | None = None,
    version: int | None = None,
) -> SavedSegment:
    """Create a segment (``version`` None) or change the version read (ConcurrentUpdate when
    someone saved it meanwhile). ``description`` and ``exclude_from_marketing`` left None keep
    what the segment has (a new one: none, not excluded): correcting an exclusion's filter
    must not quietly lift the exclusion - the leads it kept out would start getting marketing
    mail - nor drop the note saying why it is there."""
    with recorded(ports.audit, ports.clock, actor, "segments.save", f"segment:{name}") as log:
        existing = ports.segments.get_segment(name)
        if description is None:
            description = existing.description if existing else ""
        if exclude_from_marketing is None:
            exclude_from_marketing = existing.exclude_from_marketing if existing else False
        segment = checked(
            name,
            filter_text,
            description,
            saved=ports.segments.segments(),
            import_exists=ports.import_exists,
        )
        if version is None and existing is not None:
            raise AlreadyExists(f"segment {name!r} exists: give its version to change it")
        if version is not None and (existing is None or existing.version != version):
            now_at = "deleted" if existing is None else f"at version {existing.version}"
            raise ConcurrentUpdate(f"segment {name!r} is {now_at} now: reload it")
        saved = SavedSegment(
            name=name,
            filter=str(segment),
            description=description.strip(),
            exclude_from_marketing=exclude_from_marketing,
            by=actor.email or actor.user_id,
            at=isoformat(ports.clock.now()),
            version=1 if existing is None else existing.version + 1,
        )
        ports.segments.save_segment(saved)
        log.changed(_audited(existing), _audited(saved))
    return saved


def delete(ports: SegmentCommands, actor: Actor, name: str) -> None:
    with recorded(ports.audit, ports.clock, actor, "segments.delete", f"segment:{name}") as log:
        saved = _find(ports, name)
        if readers := used_by(ports, name):
            raise ValidationFailed(
                [FieldError("name", f"{name!r} is still read by {', '.join(readers)}")]
            )
        ports.segments.delete_segment(name, saved.version)
        log.changed(_audited(saved), {})


def used_by(ports: SegmentCommands, name: str) -> list[str]:
    """What reads the segment: other segments, journeys' segment triggers, and the branches of
    every draft (a journey saved only as a draft too) and of the graphs each journey's
    executions run (``_running_graphs``)."""
    readers = [f"segment {s.name}" for s in ports.segments.segments() if _reads(s.filter, name)]
    graphs = ports.journeys.draft_graphs()
    for journey in ports.journeys.journeys():
        if any(
            t.segment and _reads(t.segment, name) for t in journey.triggers if t.kind == "segment"
        ):
            readers.append(f"journey {journey.journey_id} (trigger)")
        graphs += _running_graphs(ports, journey)
    for graph in graphs:
        shown = f"version {graph.version}" if graph.version is not None else graph.which
        readers += [
            f"journey {graph.journey_id} ({shown}, branch {node})"
            for node in _branches_reading(graph, name)
        ]
    return sorted(set(readers))


def _running_graphs(ports: SegmentCommands, journey: Journey) -> list[StoredGraph]:
    """The graphs the journey's executions run: the live version's (after ``journeys rollback``
    an older one than the newest), and the newest published version's, whose executions still
    finish on it after a rollback away from it; a journey never published runs the graph it
    was shipped with. Older versions may still hold executions too, but which do is not stored
    (Step Functions would be asked execution by execution): a branch there that reads a
    deleted segment fails loudly when it runs (tsunagu.errors.MissingSegment)."""
    store = ports.journeys
    if journey.published is None:
        found = [store.graph(journey.journey_id, "shipped")]
    else:
        live = published_graph_key(journey.published.version)
        found = [store.graph(journey.journey_id, live), store.published_graph(journey.journey_id)]
    unique = {graph.which: graph for graph in found if graph is not None}
    return list(unique.values())


def _reads(text: str, name: str) -> bool:
    try:
        return name in Segment.parse(text).segments_named
    except ValueError:
        return False


def _branches_reading(graph: StoredGraph, name: str) -> Iterable[str]:
    return sorted({node for node, _, when in branch_cases(graph.definition) if _reads(when, name)})


def export(
    ports: SegmentCommands,
    actor: Actor,
    *,
    segment: str | None = None,
    encoding: ExportEncoding = "utf-8",
) -> ExportedLeads:
    """Every lead, or those a filter or saved segment selects, as CSV; the export (who, what,
    how many rows) is recorded in the audit log."""
    target = f"segment:{segment}" if segment else "leads"
    with recorded(ports.audit, ports.clock, actor, "leads.export", target) as log:
        chosen: Iterable[Lead]
        facts, now = ports.facts(), ports.clock.now()
        if segment:
            chosen = selected(resolve(ports, segment), ports.leads, facts, now)
        else:
            chosen = every_lead(ports.leads)
        # Each lead's score now, decay included: the number a score filter and `leads score` read
        scores = facts.scores(now)
        exported = export_leads(
            sorted((scores.as_of_now(lead) for lead in chosen), key=lambda lead: lead.email),
            encoding,
        )
        replaced = f", {exported.replaced} characters not in cp932" if exported.replaced else ""
        log.detail = f"{exported.rows} leads as CSV ({encoding}{replaced})"
    return exported


def _find(ports: SegmentCommands, name: str) -> SavedSegment:
    saved = ports.segments.get_segment(name)
    if saved is None:
        raise NotFound(f"no segment {name!r}")
    return saved


def _audited(segment: SavedSegment | None) -> dict[str, Any]:
    if segment is None:
        return {}
    shown = segment.as_json()
    return {k: shown[k] for k in ("filter", "description", "exclude_from_marketing")}
