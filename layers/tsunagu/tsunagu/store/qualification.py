"""Qualification in DynamoDB: the settings, awards, round-robin counters, CRM replay guard and
failed pushes (one table), and the scored lead's update."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from tsunagu.errors import IdempotencyConflict
from tsunagu.leads.capture import WriteConflict
from tsunagu.leads.model import Lead, LeadEvent
from tsunagu.leads.search_words import rank
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.crm import ReplayedRequest, VerifiedRequest
from tsunagu.qualification.deals import CrmDeal, StaleDeal
from tsunagu.qualification.grading import grade
from tsunagu.qualification.pipeline import ScoreWrite, StageMoved, lead_attributes
from tsunagu.qualification.scores import Fading, LeadScores
from tsunagu.qualification.scoring import DEFAULT_MODEL, Award
from tsunagu.store.converters import event_to_item, lead_from_item, lead_to_item
from tsunagu.store.leads import LeadRepository, set_if_unchanged
from tsunagu.store.models import QualificationItem
from tsunagu.store.revisions import revision_of, save_revised
from tsunagu.store.tables import Tables, get_or_none

CONFIG_KEY = ("config", "qualification")
CONFIG_CACHE_SECONDS = 30.0
_configs: dict[str, tuple[float, QualificationConfig, Fading]] = {}


def _award_key(lead_id: str, award: Award) -> tuple[str, str]:
    return f"lead#{lead_id}", f"award#{award.event_id}#{award.rule_id}"


def unsaved_config(time_zone: str) -> QualificationConfig:
    """The rules of a team that has saved none: the defaults, their days counted in the team's
    own time zone (a saved sheet keeps the zone it was saved with)."""
    return QualificationConfig(scoring=DEFAULT_MODEL.model_copy(update={"time_zone": time_zone}))


def _rules_of(item: QualificationItem | None, time_zone: str) -> tuple[QualificationConfig, Fading]:
    """The rules an item holds, and what fades under them or fading rules saved before them."""
    if item is None:
        config = unsaved_config(time_zone)
        return config, Fading.of(config.scoring)
    config = QualificationConfig.model_validate(item.data)
    # (rules saved before the item kept what faded have only what they fade themselves)
    return config, Fading.from_item(item.faded) | Fading.of(config.scoring)


class QualificationRepository:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    # -- settings: read on every scored event, so a warm function keeps them half a minute
    def config(self, *, fresh: bool = False) -> QualificationConfig:
        """``fresh``: read now, whatever this process keeps (another process may have saved
        new rules within the last half minute)."""
        return self._rules(fresh=fresh)[1]

    def lead_scores(self, now: datetime) -> LeadScores:
        """Leads' scores as of ``now`` under the rules saved now (each lead's awards read at
        most once; build one per evaluation)."""
        _, config, fading = self._rules()
        return LeadScores(config.scoring, fading, self.awards_of, now)

    def _rules(self, *, fresh: bool = False) -> tuple[float, QualificationConfig, Fading]:
        table = self._tables.settings.qualification_table
        cached = _configs.get(table)
        if fresh or cached is None or time.monotonic() - cached[0] > CONFIG_CACHE_SECONDS:
            item = get_or_none(self._tables.qualification, *CONFIG_KEY)
            config, fading = _rules_of(item, self._tables.settings.default_time_zone)
            cached = (time.monotonic(), config, fading)
            _configs[table] = cached
        return cached

    def has_config(self) -> bool:
        return get_or_none(self._tables.qualification, *CONFIG_KEY) is not None

    def save_config(self, config: QualificationConfig) -> None:
        """Save the rules whatever is there (a stack's seed, a test); people's changes go
        through ``replace_config``. Counted as a save all the same (store.revisions)."""
        self._save(config, over=None)

    def config_revision(self) -> tuple[QualificationConfig, int]:
        """The rules as saved now, read now (not this process's copy), and their revision
        (store.revisions; 0: never saved)."""
        item = get_or_none(self._tables.qualification, *CONFIG_KEY)
        if item is None:
            return unsaved_config(self._tables.settings.default_time_zone), 0
        return QualificationConfig.model_validate(item.data), revision_of(item)

    def replace_config(self, config: QualificationConfig, *, over: int) -> int:
        """Save the rules if they are still at revision ``over``; their revision now.
        ConcurrentUpdate, carrying the revision now, if someone saved them since."""
        return self._save(config, over=over)

    def _save(self, config: QualificationConfig, *, over: int | None) -> int:
        model = self._tables.qualification
        actions = [
            model.data.set(config.model_dump(mode="json")),
            model.faded.set(self._faded_with(config).as_item()),
            # (rules saved before store.revisions counted them kept their count here)
            model.value.remove(),
        ]
        try:
            return save_revised(
                model,
                CONFIG_KEY,
                "the qualification rules",
                actions,
                over=over,
                unsaved_is_revision_0=True,
            )
        finally:
            # (refused too: whatever this process keeps may be older than what refused it)
            _configs.pop(self._tables.settings.qualification_table, None)

    def _faded_with(self, config: QualificationConfig) -> Fading:
        """What has faded under any rules saved so far, ``config`` included: an award of a
        fading rule that is then removed goes on fading (scoring.explain), so a kind of award
        once fading is kept as fading (tsunagu.qualification.scores)."""
        item = get_or_none(self._tables.qualification, *CONFIG_KEY)
        before, fading = _rules_of(item, self._tables.settings.default_time_zone)
        return fading | Fading.of(config.scoring, before=before.scoring)

    # -- scoring
    def awards_of(self, lead_id: str) -> list[Award]:
        model = self._tables.qualification
        items = model.query(f"lead#{lead_id}", model.sk.startswith("award#"), consistent_read=True)
        return [Award.from_item(item.data) for item in items]

    def get_lead(self, lead_id: str) -> Lead | None:
        item = get_or_none(self._tables.leads, lead_id)
        return lead_from_item(item) if item else None

    def record_score(self, write: ScoreWrite) -> bool:
        """One TransactWriteItems, written out by hand: PynamoDB would make the lead's update
        conditional on a version this path never reads (and reading it costs a request)."""
        t = self._tables
        settings = t.settings
        transact: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": settings.qualification_table,
                    "Item": t.qualification(
                        *_award_key(write.lead_id, award), data=award.to_item()
                    ).serialize(),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for award in write.awards
        ]
        transact += [
            {"Put": {"TableName": settings.events_table, "Item": event_to_item(t, e).serialize()}}
            for e in write.events
        ]
        score = round(write.score, 4)
        sets = [
            "score = :score",
            "score_at = :at",
            # The search indexes sort by the rank, and score filters read it (lead_search): a
            # score written without it would leave the lead where its old score put it.
            "#rank = :rank",
            "#version = if_not_exists(#version, :zero) + :one",
        ]
        values: dict[str, Any] = {
            ":score": {"N": str(score)},
            ":rank": {"S": rank(score, write.lead_id)},  # of the score as stored
            ":at": {"S": write.at},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
        }
        names = {"#version": "version", "#rank": "rank"}
        condition = "attribute_exists(lead_id)"
        if write.grade is not None:
            sets.append("grade = :grade")
            values[":grade"] = {"S": write.grade}
        change = write.stage_change
        if change is not None:
            sets += [
                "stage = :to",
                "stage_history = list_append(if_not_exists(stage_history, :none), :history)",
            ]
            history = {
                "from": change.from_stage,
                "to": change.to_stage,
                "by": change.by,
                "at": write.at,
            }
            values[":to"] = {"S": change.to_stage}
            values[":from"] = {"S": change.from_stage}
            values[":none"] = {"L": []}
            values[":history"] = {"L": [{"M": {k: {"S": v} for k, v in history.items()}}]}
            names["#stage"] = "stage"
            condition += " AND #stage = :from"
        transact.append(
            {
                "Update": {
                    "TableName": settings.leads_table,
                    "Key": {"lead_id": {"S": write.lead_id}},
                    "UpdateExpression": "SET " + ", ".join(sets),
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        )
        client: Any = t.connection.client
        try:
            client.transact_write_items(TransactItems=transact)
        except client.exceptions.TransactionCanceledException as error:
            reasons = error.response.get("CancellationReasons", [])
            codes = [reason.get("Code") for reason in reasons]
            if "ConditionalCheckFailed" in codes[: len(write.awards)]:
                return False  # scored before: a redelivered event
            if codes and codes[-1] == "ConditionalCheckFailed":
                raise StageMoved(write.lead_id) from error
            raise
        return True

    # -- owners
    def next_value(self, team: str) -> int:
        """The team's round-robin counter, moved on by one (atomic)."""
        model = self._tables.qualification
        item = model(f"counter#{team}", "round_robin")
        item.update(actions=[model.value.add(1)])
        return int(item.value or 0)

    # -- the grade, kept with the fields it follows from
    def grade_of(self, lead: Lead, *, fresh: bool = False) -> str:
        """The grade the lead's fields give under the grading rules."""
        return grade(lead_attributes(lead), self.config(fresh=fresh).grading).grade.value

    def regrade(self, image: dict[str, Any] | None) -> str | None:
        """Store the grade the lead's fields give under the grading rules, where it is not the
        stored one; the grade written, or None. ``image``: the lead item as the leads stream
        carries it. Written only if the lead is still that version: a later change comes down
        the stream after it and is graded then."""
        if not image or "lead_id" not in image:
            return None  # a deleted lead
        item = self._tables.leads.from_raw_data(image)
        lead = lead_from_item(item)
        if lead.grade == self.grade_of(lead):
            return None  # also what stops the write's own stream record from writing again
        # A grade to change: by the rules as stored now, not as this process kept them, or a
        # reindex run just after new rules would be undone here by the old ones.
        fit = self.grade_of(lead, fresh=True)
        if lead.grade == fit:
            return None
        return fit if set_if_unchanged(self._tables, item, {"grade": fit}) else None

    # -- pushes to the CRM that failed every retry
    def park_push(self, lead_id: str, at: str, detail: dict[str, Any]) -> None:
        self._tables.qualification("push#failed", f"{at}#{lead_id}", data=detail).save()

    def failed_pushes(self) -> list[dict[str, Any]]:
        items = self._tables.qualification.query("push#failed", scan_index_forward=False)
        return [{"key": item.sk, **(item.data or {})} for item in items]


def _replay_guard(t: Tables, request: VerifiedRequest) -> Any:
    """The record that a CRM request was received (until its timestamp could not pass again),
    saved on the condition that it is new: a replay fails it."""
    return t.qualification(
        f"replay#{request.replay_key}",
        "crm",
        expires_at=int(request.keep_until.timestamp()) + 3600,
    )


def _refusals(error: TransactWriteError) -> list[str | None]:
    """Each item's cancellation code; ReplayedRequest when the first, the replay guard, failed."""
    codes = [r.code if r is not None else None for r in error.cancellation_reasons or []]
    if codes and codes[0] == "ConditionalCheckFailed":
        raise ReplayedRequest("this request was already received; sign a new one") from error
    return codes


class CrmRepository(LeadRepository):
    """The lead as the CRM webhook finds and changes it."""

    def find_lead_for_crm(self, crm_id: str, email: str) -> Lead | None:
        from tsunagu.leads.email import normalise_email
        from tsunagu.leads.model import email_identity

        lead = self.find_lead(f"crm:{crm_id}")
        if lead is None:
            lead = self.find_lead(email_identity(normalise_email(email).identity_key))
        return lead

    def save_crm_sync(
        self, lead: Lead, events: Sequence[LeadEvent], request: VerifiedRequest, crm_id: str
    ) -> None:
        t = self._tables
        replay = _replay_guard(t, request)
        pointer = t.identities(f"crm:{crm_id}", lead_id=lead.lead_id, created_at=lead.updated_at)
        try:
            with TransactWrite(connection=t.connection) as tx:
                tx.save(replay, condition=t.qualification.pk.does_not_exist())
                tx.save(
                    pointer,
                    condition=t.identities.identity.does_not_exist()
                    | (t.identities.lead_id == lead.lead_id),
                )
                tx.save(lead_to_item(t, lead))  # the version makes it conditional
                for event in events:
                    tx.save(event_to_item(t, event))
        except TransactWriteError as error:
            codes = _refusals(error)  # the replay guard first
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise IdempotencyConflict(
                    f"CRM id {crm_id!r} belongs to another lead in Tsunagu"
                ) from error
            if "ConditionalCheckFailed" in codes or "TransactionConflict" in codes:
                raise WriteConflict("lead") from error
            raise

    # -- deals (tsunagu.qualification.deals)
    def find_lead_for_reference(self, crm_id: str | None, email: str | None) -> Lead | None:
        from tsunagu.leads.email import normalise_email
        from tsunagu.leads.model import email_identity

        lead = self.find_lead(f"crm:{crm_id}") if crm_id else None
        if lead is None and email:
            lead = self.find_lead(email_identity(normalise_email(email).identity_key))
        return lead

    def save_crm_deal(self, deal: CrmDeal, event: LeadEvent, request: VerifiedRequest) -> None:
        """``deal#<id>`` / ``crm``: the deal as the CRM last described it, its update time in
        ``value`` (milliseconds) so that only a newer one replaces it."""
        t = self._tables
        replay = _replay_guard(t, request)
        updated_ms = int(deal.updated_at.timestamp() * 1000)
        kept = t.qualification(
            f"deal#{deal.deal_id}", "crm", data=event.properties, value=updated_ms
        )
        try:
            with TransactWrite(connection=t.connection) as tx:
                tx.save(replay, condition=t.qualification.pk.does_not_exist())
                tx.save(
                    kept,
                    condition=t.qualification.pk.does_not_exist()
                    | (t.qualification.value < updated_ms),
                )
                tx.save(event_to_item(t, event))
        except TransactWriteError as error:
            codes = _refusals(error)  # the replay guard first
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise StaleDeal(
                    f"deal {deal.deal_id!r} has an update as new or newer than this one"
                ) from error
            raise
