"""The qualification settings a team keeps as data: scoring sheet, fit sheet, MQL rule, who owns
a new MQL, and which side wins a field the CRM and Tsunagu both set."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tsunagu.qualification.crm import MergePolicy
from tsunagu.qualification.grading import Grade, GradingRules
from tsunagu.qualification.owners import OwnerRules
from tsunagu.qualification.scoring import DEFAULT_MODEL, ScoringModel


class QualificationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scoring: ScoringModel = DEFAULT_MODEL
    grading: GradingRules = Field(default_factory=GradingRules)
    minimum_grade: Grade = Grade.D
    """MQL needs the score at or over the threshold and a grade at least this good."""
    owners: OwnerRules = Field(default_factory=OwnerRules)
    crm_merge: MergePolicy = Field(default_factory=MergePolicy)


GRADED_FIELDS = ("job_title", "department", "company_size", "industry", "country", "email")
