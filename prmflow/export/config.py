"""What an export asks for: the trainer's format, the label column, the filters, the split, the file type.

Checked whole at construction (``_verify_args``), before a row is read: a soft label for a trainer that
only takes booleans, a filter that cannot apply to the format, a fraction outside [0, 1) each fail with
one line naming the option and the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prmflow.core.section import ConfigError

Format = Literal["trl", "openrlhf", "math-shepherd", "verl", "prmflow"]
LabelKind = Literal["hard", "soft", "relative", "judge", "consensus", "gold"]
FileFormat = Literal["parquet", "jsonl"]

FORMATS: tuple[str, ...] = ("trl", "openrlhf", "math-shepherd", "verl", "prmflow")
LABELS: tuple[str, ...] = ("hard", "soft", "relative", "judge", "consensus", "gold")
FILE_FORMATS: tuple[str, ...] = ("parquet", "jsonl")

BOOLEAN_FORMATS = ("trl", "openrlhf", "math-shepherd")
"""Formats whose labels are booleans (or ``+``/``-``) only: TRL's ``PRMTrainer.tokenize_row`` casts every
label with ``int()``, so a soft 0.67 would silently train as 0; OpenRLHF 0.9.5's ``ProcessRewardDataset``
writes the labels into a copy of the Long ``input_ids`` tensor, so float labels fail on every row
(``RuntimeError: Index put requires the source and destination dtypes match``; they worked only in
0.5.0-0.5.5); Math-Shepherd's ``label`` text holds one ``+`` or ``-`` per step."""

OPENRLHF_VERSION = "0.9.5"
"""The OpenRLHF release the openrlhf format targets: the last with ``openrlhf.cli.train_prm`` (removed in
0.10, 2026-03), tested with its own ``ProcessRewardDataset`` and ``PRMLoss`` (tests/export)."""

AFTER_FIRST_ERROR = ("truncate", "negative", "drop")

SOFT_REFUSAL = {
    "trl": "TRL's PRMTrainer casts labels with int(), so a soft label would silently become 0",
    "openrlhf": (f"OpenRLHF {OPENRLHF_VERSION}'s ProcessRewardDataset puts labels into a Long tensor, so float labels "
                 f"fail on every row (they worked only in 0.5.0-0.5.5)"),
    "math-shepherd": "Math-Shepherd's label text holds one + or - per step",
}

PLACEHOLDER = " ки"
"""Math-Shepherd's step tag (peiyi9979/Math-Shepherd on the hub: "ки" serves as a unique token denoting the
position for predicting the step score), also OpenRLHF's documented ``--placeholder_token``."""


class ExportError(ConfigError):
    """An export that cannot be made as asked; the message says what and what to do instead."""


@dataclass(frozen=True)
class ExportConfig:
    format: Format
    """The trainer's layout: trl | openrlhf | math-shepherd | verl | prmflow (native, weighted)."""
    label: LabelKind | None = None
    """The step label exported: hard (hard_label) | soft (soft_label) | relative (relative_label) | judge
    (judge_score > 0.5) | consensus (hard_label of consensus-kept trajectories) | gold (gold_label).
    None: soft for the native format, hard for the others; always None for verl, which has no step labels."""
    min_weight: float | None = None
    """Keep a trajectory only if every step's consistency weight is >= this (a null weight fails)."""
    consensus_only: bool = False
    """Keep only trajectories whose judge and Monte-Carlo first errors agree (consensus = true)."""
    sources: tuple[str, ...] = ()
    """Keep only these inputs (the ``source`` column); empty = all."""
    methods: tuple[str, ...] = ()
    """Keep only trajectories labeled by these methods (the ``method`` column); empty = all."""
    val_fraction: float = 0.05
    """Share of problems (by a seeded content hash of problem_id) in the validation split."""
    seed: int = 0
    """Seed of the split's hash; another seed gives another split of the same run."""
    file_format: FileFormat = "parquet"
    """parquet (explicit Arrow schema, zstd) | jsonl (one JSON object a line, UTF-8)."""
    placeholder: str = PLACEHOLDER
    """The step tag of openrlhf and math-shepherd exports, put after every step."""
    overwrite: bool = False
    """Replace an existing non-empty output directory."""
    after_first_error: str = "truncate"
    """Step formats: what happens to the steps after a trajectory's first wrong step: truncate (left out,
    the PRM800K / TRL convention) | negative (each labeled 0) | drop (kept with their own labels; the
    trajectory is dropped if one of them is unlabeled). See :mod:`prmflow.export.select`."""
    license: str | None = None
    """The dataset card's ``license`` (a hub license id, e.g. apache-2.0); None leaves it out, with a
    warning: the license of labels follows the license of the problems and of the policy's outputs."""
    language: tuple[str, ...] = ("en",)
    """The dataset card's ``language`` (ISO 639-1 codes of the problems' and solutions' language)."""
    tokenizer: str | None = None
    """openrlhf: a tokenizer directory to check the placeholder and reward tokens against (each one token,
    exactly one placeholder per label in every input); the export is refused otherwise."""

    def __post_init__(self) -> None:
        if self.format == "verl" and self.label is not None:
            raise ExportError(f"--label {self.label} does not apply to --format verl, which exports problems and start "
                              f"states with their ground truth, not step labels; drop it")
        if self.label is None and self.format != "verl":
            object.__setattr__(self, "label", "soft" if self.format == "prmflow" else "hard")
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "language", tuple(self.language))
        self._verify_args()

    def _verify_args(self) -> None:
        if self.format not in FORMATS:
            raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.format != "verl" and self.label not in LABELS:
            raise ExportError(f"--label must be one of {', '.join(LABELS)}, got {self.label!r}")
        if self.file_format not in FILE_FORMATS:
            raise ExportError(f"--file-format must be one of {', '.join(FILE_FORMATS)}, got {self.file_format!r}")
        if not 0 <= self.val_fraction < 1:
            raise ExportError(f"--val-fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.min_weight is not None and not (self.min_weight == self.min_weight and abs(self.min_weight) < float("inf")):
            raise ExportError(f"--min-weight must be a finite number, got {self.min_weight!r}")
        if self.format in BOOLEAN_FORMATS and self.label == "soft":
            raise ExportError(
                f"--format {self.format} takes boolean step labels only ({SOFT_REFUSAL[self.format]}); use --label "
                f"hard, or --format prmflow for soft labels"
            )
        if self.after_first_error not in AFTER_FIRST_ERROR:
            raise ExportError(f"--after-first-error must be one of {', '.join(AFTER_FIRST_ERROR)}, "
                              f"got {self.after_first_error!r}")
        if self.format == "verl" and self.after_first_error != "truncate":
            raise ExportError(f"--after-first-error {self.after_first_error} shapes step labels, which --format verl "
                              f"does not export; drop it")
        if self.tokenizer is not None and self.format != "openrlhf":
            raise ExportError(f"--tokenizer checks OpenRLHF's placeholder tokens and applies to --format openrlhf "
                              f"only, got --format {self.format}")
        if self.license is not None and (not self.license.strip() or any(c.isspace() for c in self.license)):
            raise ExportError(f"--license must be a hub license id such as apache-2.0 or cc-by-4.0, got {self.license!r}")
        if self.format == "verl":
            used = [name for name, on in (("--min-weight", self.min_weight is not None),
                                          ("--consensus-only", self.consensus_only),
                                          ("--methods", bool(self.methods))) if on]
            if used:
                raise ExportError(f"{used[0]} filters step labels, which --format verl does not export (problems and "
                                  f"start states with ground truth); drop it")
        if self.format in ("openrlhf", "math-shepherd"):
            if not self.placeholder.strip():
                raise ExportError(f"--placeholder must hold a visible token, got {self.placeholder!r}")
            if self.placeholder.strip() in ("+", "-"):
                raise ExportError(f"--placeholder must differ from the reward tokens + and -, got {self.placeholder!r}")
        if not self.language or any(not (2 <= len(c) <= 3 and c.isalpha() and c.islower()) for c in self.language):
            raise ExportError(f"--language takes comma-separated ISO 639 codes such as en, got {','.join(self.language)!r}")
        if any(not s for s in self.sources) or any(not m for m in self.methods):
            raise ExportError("--sources and --methods take comma-separated non-empty names")

    @property
    def marker(self) -> str:
        """The placeholder's visible text: what must never occur inside a prompt or a step."""
        return self.placeholder.strip()
