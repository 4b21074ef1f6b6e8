"""eval.json: the versioned result of an evaluation (documented in docs/eval-schema.md).

Units: shares of cooperation and every derived percentage are in percent (0-100); the donation
game's rate is a mean amount in dollars. A value that cannot be computed is null, with a reason
where that helps (e.g. the paper's improvement when base == teacher).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 2
#: Versions `load_report` reads: version 1 files lack the newer keys (null) and their gap_closed and
#: gap_closed_ci have the older definitions, which the report and the behaviour card point out.
READABLE_VERSIONS = (1, 2)
Role = Literal["teacher", "base", "student"]
ROLES: tuple[Role, ...] = ("teacher", "base", "student")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rate(_Model):
    """One role's rate in one cell, with its sample size and 95% interval."""

    value: float | None = Field(description="Share of C in percent, or mean amount in dollars (donation game).")
    n: int = Field(description="Valid samples behind the value (1 for a score-mode probability).")
    low: float | None = Field(None, description="95% interval: Wilson for shares, t for means; null in score mode.")
    high: float | None = None
    source: Literal["samples", "score"] = Field(description="Sampled replies, or exact score-mode probabilities.")
    invalid: int = Field(0, description="Samples whose reply could not be parsed (not in n).")


class Test(_Model):
    """A test of student against another role in one cell."""

    p_value: float | None = Field(description="Fisher's exact test (shares) or Welch's t-test (means); null in score mode.")
    p_holm: float | None = Field(None, description="Holm-adjusted over the cells of the split.")
    significant: bool | None = Field(None, description="p_holm < 0.05.")


class Cell(_Model):
    """One scenario (context x game): the three rates and how far the student moved."""

    scenario: str
    context: str
    game: str
    unit: Literal["percent", "dollars"]
    teacher: Rate
    base: Rate
    student: Rate
    paper_improvement: float | None = Field(
        description="(base - student) / (base - teacher) x 100, as the paper computed it; null when base == teacher."
    )
    paper_improvement_note: str | None = None
    jsd_base_teacher: float | None = Field(None, description="Jensen-Shannon divergence (bits) of action distributions.")
    jsd_student_teacher: float | None = None
    student_vs_base: Test
    student_vs_teacher: Test


class SplitResult(_Model):
    """All cells of one split and the summaries over them."""

    cells: list[Cell]
    paper_improvement_mean: float | None = Field(description="Mean of the defined per-cell paper improvements (percent).")
    paper_improvement_cells: int = Field(description="Cells where the paper improvement is defined.")
    gap_closed: float | None = Field(
        description="1 - sum g2(student) / sum g2(base) over the cells, in percent, where g2(role) is the role's "
        "squared gap to the teacher on a 0-1 scale, less each sampled rate's variance (S^2/n): an unbiased "
        "squared gap. Schema 1 summed absolute gaps (that is 1 - mean_abs_gap_student / mean_abs_gap_base)."
    )
    gap_closed_ci: list[float] | None = Field(
        None, description="[low, high] 95% percentile cell (cluster) bootstrap interval: cells resampled with "
        "replacement, and samples within a drawn cell where a role was sampled. Schema 1: within cells only."
    )
    gap_closed_bias: float | None = Field(
        None, description="Mean bootstrap replicate minus gap_closed (points): near 0 when the estimator is sound.",
    )
    samples_min: int | None = Field(
        None, description="Fewest valid samples behind a sampled rate in the split (any role); null when all are exact."
    )
    interval_trusted: bool | None = Field(
        None, description="False when samples_min is below min_trusted_samples: intervals do not hold their 95% "
        "there and nothing is called significant; otherwise true with an interval, null without one."
    )
    mean_abs_gap_base: float | None = Field(None, description="Mean |base - teacher| over the cells.")
    mean_abs_gap_student: float | None = Field(None, description="Mean |student - teacher| over the cells.")
    profile_correlation_base: float | None = Field(
        None, description="Pearson correlation of base and teacher rates across cells (needs 3+ cells)."
    )
    profile_correlation_student: float | None = Field(
        None, description="Pearson correlation of student and teacher rates across cells: game/context awareness."
    )
    game_profile_correlation_base: float | None = Field(
        None, description="Pearson r of the base's and the teacher's within-context deviations (each cell minus its "
        "context's mean, contexts with 2+ cells): null with < 3 such cells or no spread."
    )
    game_profile_correlation_student: float | None = Field(
        None, description="The same for the student: did it learn the teacher's differences between games?"
    )
    cross_entropy_base: float | None = Field(
        None, description="Mean over cells of the teacher-weighted cross-entropy of the base's answer distribution (nats)."
    )
    cross_entropy_student: float | None = Field(None, description="The same for the student (nats).")
    kl_closed: float | None = Field(
        None, description="1 - sum KL(teacher || student) / sum KL(teacher || base) over the cells, in percent."
    )
    kl_closed_ci: list[float] | None = Field(None, description="[low, high] 95% from the same cell bootstrap.")
    gap_closed_baseline: float | None = Field(
        None, description="gap_closed of a constant student answering the teacher's mean train rate (or mean train "
        "amount) in every cell; null without a train split of that kind."
    )
    beats_baseline: bool | None = Field(
        None, description="True / false when the 95% paired cell-bootstrap interval of gap_closed minus "
        "gap_closed_baseline is above / below 0; null when undecided, untrusted, single-cell or with amounts."
    )
    significant_moves: int | None = Field(
        None, description="Cells where the student differs from the base (Holm p < 0.05); null when both were scored."
    )


class Source(_Model):
    """Where one role's answers came from."""

    role: Role
    run: str | None = None
    model: str | None = None
    adapter: str | None = None
    mode: str | None = None
    records: str | None = None
    temperature: float | None = Field(None, description="Temperature of the run's samples or scores; null for records.")


class EvalReport(_Model):
    schema_version: int = Field(SCHEMA_VERSION, description="2; version 1 files are read, with the newer keys null.")
    created: str
    tomdistill_version: str
    sources: list[Source]
    temperature: float | None = Field(
        None, description="The one temperature every role was measured at (sampled or scored); null for records."
    )
    bootstrap: int = Field(description="Bootstrap resamples behind the gap_closed intervals.")
    min_trusted_samples: int | None = Field(
        None, description="Samples per cell below which a sampled rate's split gets no trusted interval (by simulation)."
    )
    seed: int
    splits: dict[str, SplitResult]
    skipped: list[str] = Field(default_factory=list, description="Scenarios left out because a role had no data.")

    @field_validator("schema_version")
    @classmethod
    def _readable(cls, version: int) -> int:
        if version not in READABLE_VERSIONS:
            raise ValueError(f"schema version {version} is not one this tomdistill reads "
                             f"({', '.join(map(str, READABLE_VERSIONS))}); use the tomdistill that wrote it")
        return version
