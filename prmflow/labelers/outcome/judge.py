"""``judge``: the outcome is an LLM judge's verdict, for domains without a verifier (fuzzy
correctness, rubrics) or to study what a judge's noise does to the labels.

Configured by the run's ``judge`` section (model, template, votes), not by ``outcome.options``. Each
solution is rendered into the judge's template (a step template sees it split into lines, as the
``lines`` segmenter would), K votes are sampled on the judge's own shared engine, and the plurality
verdict is the outcome. ``label_many`` sends a whole batch in one engine call: the rollout stage
grades all rollouts of a batch at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from prmflow.core.prompts import judge_request
from prmflow.core.segment import SegmentConfig, segment
from prmflow.core.trajectories import from_segmentation
from prmflow.judge import JudgeConfig, JudgePromptError, aggregate_votes, parse_vote, render_judge_prompt
from prmflow.labelers.outcome.base import Outcome
from prmflow.samplers.shared import shared_sampler
from prmflow.schemas import Problem
from prmflow.sources.base import BadRecord

_LINES = SegmentConfig()


class JudgeLabeler:
    name = "judge"

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        self.template = config.template_spec
        self.sampler = shared_sampler(config.sampler)

    def label(self, solution: str, problem: Problem) -> Outcome:
        return self.label_many([(solution, problem)])[0]

    def label_many(self, pairs: Sequence[tuple[str, Problem]]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(pairs)
        todo, requests, steps = [], [], []
        j = self.config
        for i, (solution, problem) in enumerate(pairs):
            try:
                t = from_segmentation(problem, segment(solution, _LINES), origin="judged", max_steps=10**6)
                prompt = render_judge_prompt(self.template, problem, t)
            except (BadRecord, JudgePromptError) as e:
                # no steps: the solution says nothing (wrong, like no_answer); no reference or rubric:
                # the problem cannot be judged by this template
                empty = isinstance(e, BadRecord) or e.reason == "no_steps"
                outcomes[i] = Outcome(0.0 if empty else None, self.name, "no_answer" if empty else "no_reference",
                                      None, str(e)[:500])
                continue
            todo.append(i)
            steps.append(t.num_steps)
            requests.append(judge_request(problem, t, prompt, self.template.name, j.votes, j.temperature, j.top_p,
                                          j.max_tokens, j.sampler.seed))
        results = self.sampler.generate(requests) if requests else []
        for i, n, result in zip(todo, steps, results, strict=True):
            if result.error:
                outcomes[i] = Outcome(None, self.name, "error", None, result.error[:500])
                continue
            verdict = aggregate_votes(self.template, [parse_vote(self.template, c.text, n) for c in result.completions], n)
            if verdict.outcome is None:
                outcomes[i] = Outcome(None, self.name, "parse_error", None,
                                      f"none of the judge's {verdict.votes} votes could be parsed")
            else:
                outcomes[i] = Outcome(verdict.outcome, self.name, "ok", None,
                                      None if verdict.unparsed == 0 else f"{verdict.unparsed} of {verdict.votes} votes unparsed")
        return [o for o in outcomes if o is not None]

    def close(self) -> None:
        """The judge's engine is shared by the process; it is not closed here."""
