"""LLM-as-judge: templates, prompt rendering, verdict parsing, vote aggregation, consensus."""

from prmflow.judge.config import JudgeConfig
from prmflow.judge.prompt import JudgePromptError, JudgeTemplate, load_template, render_judge_prompt
from prmflow.judge.verdict import JudgeVerdict, Vote, aggregate_votes, consensus, parse_vote

__all__ = [
    "JudgeConfig",
    "JudgePromptError",
    "JudgeTemplate",
    "JudgeVerdict",
    "Vote",
    "aggregate_votes",
    "consensus",
    "load_template",
    "parse_vote",
    "render_judge_prompt",
]
