"""Seeded multi-step arithmetic word problems, with the program that solves them.

Why a generator of its own: the ``arith`` domain must give every step of every solution an
*exact* truth (see :mod:`prmflow.domains.arith.checker`), which needs the reference computation
as data rather than as prose. Each problem therefore carries

* ``quantities``: every number stated in the prompt, in order of appearance (distractors
  included, so a policy can pick the wrong one);
* ``program``: the reference computation, one binary operation per step, whose operands refer
  to a stated quantity or to an earlier step's result (a step result that two later steps use,
  or a stated number used twice, is how a problem makes the solver *carry* a value);
* ``demonstration``: the program written out as the solution format the tiny model is trained
  on: one ``a op b = c`` line per step (``+ - * /``), then ``The answer is N``.

Numbers stay small for a ~1M-parameter model: every stated number and every intermediate result
is an integer in ``[2, 200]`` (:data:`MIN_VALUE`, :data:`MAX_VALUE`), division is exact, and
there are 2-5 operations per problem. The ceiling of 200 is measured, not arbitrary: with 999, a
fifth of all steps had a 3-digit number and the trained ``arith-tiny`` slipped on ~40% of those
(vs 4-10% on 2-digit steps), which capped its greedy accuracy at ~73%. Values below 2 are
excluded on purpose: a 0 or 1 makes ``x + 0``/``x * 1`` steps that are true for any reading of
the operands, which would blur the checker's "wrong operand" verdicts.

Pure Python (no torch, no Beam): Beam workers and the checker import it cheaply.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, field
from typing import Literal

PROMPT_TEMPLATE = "Question: {prompt}\nAnswer:\n"
"""The plain-text template the ``arith-tiny`` model was trained on; the solution follows it."""

ANSWER_TEMPLATE = "The answer is {answer}"
"""The last line of a solution, and of every demonstration."""

OPS = ("+", "-", "*", "/")
MIN_VALUE = 2
MAX_VALUE = 200
MIN_OPS = 2
MAX_OPS = 5


@dataclass(frozen=True)
class Operand:
    """Where a program step takes an input from: a stated quantity or an earlier step's result."""

    source: Literal["quantity", "step"]
    index: int

    def __post_init__(self) -> None:
        if self.source not in ("quantity", "step"):
            raise ValueError(f"Operand.source must be 'quantity' or 'step', got {self.source!r}")
        if self.index < 0:
            raise ValueError(f"Operand.index must be >= 0, got {self.index}")


@dataclass(frozen=True)
class ProgramStep:
    """One binary operation of the reference computation; ``value`` is its (integer) result."""

    op: str
    left: Operand
    right: Operand
    value: int


@dataclass(frozen=True)
class ArithProblem:
    """A word problem plus the reference program that solves it.

    ``demonstration`` and ``steps`` are derived from ``program`` (not passed in) so they can
    never disagree with it; they are still dataclass fields so ``dataclasses.asdict`` and
    pickling (Beam) carry them.
    """

    problem_id: str
    prompt: str
    answer: int
    quantities: tuple[int, ...]
    program: tuple[ProgramStep, ...]
    distractors: tuple[int, ...] = ()
    """Indices into ``quantities`` of numbers the program never uses."""
    steps: tuple[str, ...] = field(init=False)
    demonstration: str = field(init=False)

    def __post_init__(self) -> None:
        _validate_program(self.quantities, self.program, self.answer, self.distractors)
        lines = tuple(
            f"{self.operand_value(s.left)} {s.op} {self.operand_value(s.right)} = {s.value}"
            for s in self.program
        )
        steps = (*lines, ANSWER_TEMPLATE.format(answer=self.answer))
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "demonstration", "\n".join(steps))

    def operand_value(self, operand: Operand) -> int:
        if operand.source == "quantity":
            return self.quantities[operand.index]
        return self.program[operand.index].value

    @property
    def num_ops(self) -> int:
        return len(self.program)

    @property
    def relevant_quantities(self) -> tuple[int, ...]:
        """Values of the stated numbers the program uses (each once, in order of appearance)."""
        used = {o.index for s in self.program for o in (s.left, s.right) if o.source == "quantity"}
        return tuple(v for i, v in enumerate(self.quantities) if i in used)


def apply_op(op: str, left: int, right: int) -> int:
    """Integer result of ``left op right``; division must be exact (the domain has no fractions)."""
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        if right == 0 or left % right:
            raise ValueError(f"division {left} / {right} is not exact; arith problems use exact division only")
        return left // right
    raise ValueError(f"op must be one of {OPS}, got {op!r}")


def _validate_program(
    quantities: tuple[int, ...], program: tuple[ProgramStep, ...], answer: int, distractors: tuple[int, ...]
) -> None:
    """Reject programs the checker cannot reason about, saying which step is wrong and why."""
    if not program:
        raise ValueError("program must have at least one step, got an empty program")
    used_steps: set[int] = set()
    for i, step in enumerate(program):
        values = []
        for side, operand in (("left", step.left), ("right", step.right)):
            if operand.source == "quantity":
                if operand.index >= len(quantities):
                    raise ValueError(
                        f"program step {i} {side} operand refers to quantity {operand.index}, "
                        f"but only {len(quantities)} quantities are stated"
                    )
                if operand.index in distractors:
                    raise ValueError(f"program step {i} {side} operand uses distractor quantity {operand.index}")
                values.append(quantities[operand.index])
            else:
                if operand.index >= i:
                    raise ValueError(
                        f"program step {i} {side} operand refers to step {operand.index}, "
                        "which is not an earlier step"
                    )
                used_steps.add(operand.index)
                values.append(program[operand.index].value)
        expected = apply_op(step.op, values[0], values[1])
        if expected != step.value:
            raise ValueError(
                f"program step {i} says {values[0]} {step.op} {values[1]} = {step.value}, but it is {expected}"
            )
    unused = sorted(set(range(len(program) - 1)) - used_steps)
    if unused:
        raise ValueError(f"program steps {unused} are never used by a later step; every step must feed the answer")
    if program[-1].value != answer:
        raise ValueError(f"answer {answer} differs from the last program step's value {program[-1].value}")


def format_prompt(problem: ArithProblem | str) -> str:
    """The model input for a problem (or a bare prompt string): :data:`PROMPT_TEMPLATE` filled in."""
    prompt = problem if isinstance(problem, str) else problem.prompt
    return PROMPT_TEMPLATE.format(prompt=prompt)


def format_answer(answer: int) -> str:
    return ANSWER_TEMPLATE.format(answer=answer)


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------

NAMES = (
    "Ava", "Ben", "Carla", "Dev", "Emma", "Felix", "Grace", "Hugo", "Iris", "Jack", "Kira", "Leo",
    "Maya", "Nico", "Olga", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Will", "Xena",
    "Yusuf", "Zoe", "Anna", "Omar", "Lily", "Tom", "Nina", "Raj", "Elena", "Kofi", "Mia", "Ivan",
)  # fmt: skip
# (singular, plural) pairs; all countable, none whose story implies a fixed number.
OBJECTS = (
    ("apple", "apples"), ("marble", "marbles"), ("sticker", "stickers"), ("pencil", "pencils"),
    ("cookie", "cookies"), ("book", "books"), ("coin", "coins"), ("card", "cards"), ("stamp", "stamps"),
    ("shell", "shells"), ("bead", "beads"), ("egg", "eggs"), ("toy car", "toy cars"), ("balloon", "balloons"),
    ("candy", "candies"), ("flower", "flowers"), ("cupcake", "cupcakes"), ("button", "buttons"),
    ("crayon", "crayons"), ("rock", "rocks"), ("ribbon", "ribbons"), ("block", "blocks"), ("pen", "pens"),
    ("orange", "oranges"), ("muffin", "muffins"), ("ticket", "tickets"), ("bottle", "bottles"),
    ("seed", "seeds"), ("puzzle", "puzzles"), ("feather", "feathers"),
)  # fmt: skip
CONTAINERS = (
    ("box", "boxes"), ("bag", "bags"), ("pack", "packs"), ("jar", "jars"), ("basket", "baskets"),
    ("crate", "crates"), ("tray", "trays"), ("carton", "cartons"),
)  # fmt: skip

class _Infeasible(Exception):
    """A clause cannot be applied to the current value (e.g. no exact divisor); retry the problem."""


class _Builder:
    """Accumulates sentences, stated quantities and program steps for one problem."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.names = rng.sample(NAMES, 3)
        self.obj, self.objs = rng.choice(OBJECTS)
        self.other, self.others = rng.choice([o for o in OBJECTS if o[0] != self.obj])
        self.box, self.boxes = rng.choice(CONTAINERS)
        self.values: list[int] = []  # quantity values by provisional id (creation order)
        self.distractor_ids: set[int] = set()
        self.sentences: list[tuple[str, list[int]]] = []  # text, provisional quantity ids in text order
        self.program: list[tuple[str, Operand, Operand, int]] = []  # operands use provisional ids
        self.carried: Operand | None = None  # a stated count a later question refers back to

    # -- values -----------------------------------------------------------------------------
    def value(self, operand: Operand) -> int:
        return self.values[operand.index] if operand.source == "quantity" else self.program[operand.index][3]

    def quantity(self, value: int, distractor: bool = False) -> Operand:
        if not MIN_VALUE <= value <= MAX_VALUE:
            raise _Infeasible
        self.values.append(value)
        if distractor:
            self.distractor_ids.add(len(self.values) - 1)
        return Operand("quantity", len(self.values) - 1)

    def step(self, op: str, left: Operand, right: Operand) -> Operand:
        lv, rv = self.value(left), self.value(right)
        if op == "/" and (rv == 0 or lv % rv):
            raise _Infeasible
        result = apply_op(op, lv, rv)
        if not MIN_VALUE <= result <= MAX_VALUE:
            raise _Infeasible
        self.program.append((op, left, right, result))
        return Operand("step", len(self.program) - 1)

    # -- text -------------------------------------------------------------------------------
    def say(self, template: str, **numbers: Operand) -> None:
        """Append a sentence; numeric fields are Operands, the rest come from the problem's cast."""
        order = [name for _, name, _, _ in string.Formatter().parse(template) if name]
        ids = [numbers[name].index for name in order if name in numbers]
        cast = {
            "P": self.names[0], "Q": self.names[1], "R": self.names[2], "obj": self.obj, "objs": self.objs,
            "box": self.box, "boxes": self.boxes, "other": self.other, "others": self.others,
        }  # fmt: skip
        text = template.format(**cast, **{k: self.values[v.index] for k, v in numbers.items()})
        self.sentences.append((text[0].upper() + text[1:], ids))

    def pick(self, *templates: str) -> str:
        return self.rng.choice(templates)


# Each clause appends sentences and program steps and returns the new running value. The number
# in a clause's name tuple below is how many program steps it adds (its "op cost").


def _start_has(b: _Builder) -> Operand:
    n = b.quantity(b.rng.randint(6, 60))
    b.say(b.pick("{P} has {n} {objs}.", "{P} collected {n} {objs}.", "There are {n} {objs} in {P}'s room."), n=n)
    return n


def _start_groups(b: _Builder) -> Operand:
    a, k = b.quantity(b.rng.randint(2, 9)), b.quantity(b.rng.randint(2, 12))
    b.say(
        b.pick(
            "{P} has {a} {boxes} of {objs} with {k} {objs} in each {box}.",
            "{P} buys {a} {boxes} of {objs}, and each {box} holds {k} {objs}.",
        ),
        a=a,
        k=k,
    )
    return b.step("*", a, k)


def _start_compare(b: _Builder) -> Operand:
    """The other person's count is stated first, so a question can carry it back later."""
    n = b.quantity(b.rng.randint(6, 50))
    b.say("{R} has {n} {objs}.", n=n)
    b.carried = n
    if b.rng.random() < 0.5:
        m = b.quantity(b.rng.randint(2, 30))
        b.say(b.pick("{P} has {m} more {objs} than {R}.", "{P} has {m} {objs} more than {R} does."), m=m)
        return b.step("+", n, m)
    m = b.quantity(b.rng.randint(2, max(2, b.value(n) - 2)))
    b.say(b.pick("{P} has {m} fewer {objs} than {R}.", "{P} has {m} {objs} less than {R} does."), m=m)
    return b.step("-", n, m)


def _update_add(b: _Builder, x: Operand) -> Operand:
    n = b.quantity(b.rng.randint(2, 40))
    b.say(
        b.pick(
            "{P} buys {n} more {objs}.",
            "{Q} gives {P} {n} {objs}.",
            "Then {P} finds {n} more {objs}.",
            "Later, {P} gets {n} {objs} as a gift.",
        ),
        n=n,
    )
    return b.step("+", x, n)


def _update_sub(b: _Builder, x: Operand) -> Operand:
    high = min(40, b.value(x) - MIN_VALUE)
    if high < MIN_VALUE:
        raise _Infeasible
    n = b.quantity(b.rng.randint(2, high))
    b.say(
        b.pick(
            "{P} gives {n} {objs} to {Q}.",
            "{P} loses {n} {objs}.",
            "{P} sells {n} of the {objs}.",
            "Then {P} uses {n} {objs} for a school project.",
        ),
        n=n,
    )
    return b.step("-", x, n)


def _update_mul(b: _Builder, x: Operand) -> Operand:
    high = min(5, (MAX_VALUE // 2) // b.value(x))  # half the ceiling: leaves room for later additions
    if high < 2:
        raise _Infeasible
    k = b.quantity(b.rng.randint(2, high))
    b.say(
        b.pick(
            "Then {P} ends up with {k} times as many {objs} as before.",
            "After a good month, the number of {objs} {P} has is {k} times as large.",
        ),
        k=k,
    )
    return b.step("*", x, k)


def _update_div(b: _Builder, x: Operand) -> Operand:
    k = _divisor(b, b.value(x))
    b.say(
        b.pick(
            "{P} splits the {objs} into {k} equal piles and keeps only one pile.",
            "{P} divides the {objs} equally into {k} {boxes} and keeps just one {box}.",
        ),
        k=k,
    )
    return b.step("/", x, k)


def _update_add_groups(b: _Builder, x: Operand) -> Operand:
    a, k = b.quantity(b.rng.randint(2, 6)), b.quantity(b.rng.randint(2, 12))
    b.say(
        b.pick(
            "{P} buys {a} {boxes} with {k} {objs} in each.",
            "{Q} gives {P} {a} {boxes} of {objs}, and each {box} has {k} {objs}.",
        ),
        a=a,
        k=k,
    )
    return b.step("+", x, b.step("*", a, k))


def _update_sub_groups(b: _Builder, x: Operand) -> Operand:
    a = b.quantity(b.rng.randint(2, 6))
    high = min(12, (b.value(x) - MIN_VALUE) // b.value(a))
    if high < 2:
        raise _Infeasible
    k = b.quantity(b.rng.randint(2, high))
    b.say(
        b.pick(
            "{P} fills {a} {boxes} with {k} {objs} each and gives them away.",
            "{P} sells {a} {boxes} of {objs} with {k} {objs} in each {box}.",
        ),
        a=a,
        k=k,
    )
    return b.step("-", x, b.step("*", a, k))


def _divisor(b: _Builder, value: int) -> Operand:
    divisors = [k for k in range(2, 10) if value % k == 0 and value // k >= MIN_VALUE]
    if not divisors:
        raise _Infeasible
    return b.quantity(b.rng.choice(divisors))


def _ask_now(b: _Builder, x: Operand) -> Operand:
    b.say(b.pick("How many {objs} does {P} have now?", "How many {objs} does {P} have at the end?"))
    return x


def _ask_each(b: _Builder, x: Operand) -> Operand:
    k = _divisor(b, b.value(x))
    b.say("{P} puts all the {objs} into {k} {boxes} with the same number in each.", k=k)
    b.say("How many {objs} are in each {box}?")
    return b.step("/", x, k)


def _ask_worth(b: _Builder, x: Operand) -> Operand:
    high = min(9, MAX_VALUE // b.value(x))
    if high < 2:
        raise _Infeasible
    p = b.quantity(b.rng.randint(2, high))
    b.say("Each {obj} is worth {p} dollars.", p=p)
    b.say("How many dollars are all of {P}'s {objs} worth?")
    return b.step("*", x, p)


def _ask_together_more(b: _Builder, x: Operand) -> Operand:
    n = b.quantity(b.rng.randint(2, 30))
    b.say(b.pick("{Q} has {n} more {objs} than {P}.", "{Q} has {n} {objs} more than {P} has."), n=n)
    b.say(b.pick("How many {objs} do {P} and {Q} have together?", "How many {objs} do they have in total?"))
    return b.step("+", x, b.step("+", x, n))


def _ask_together_fewer(b: _Builder, x: Operand) -> Operand:
    high = min(30, b.value(x) - MIN_VALUE)
    if high < 2:
        raise _Infeasible
    n = b.quantity(b.rng.randint(2, high))
    b.say("{Q} has {n} fewer {objs} than {P}.", n=n)
    b.say(b.pick("How many {objs} do {P} and {Q} have together?", "How many {objs} do they have in total?"))
    return b.step("+", x, b.step("-", x, n))


def _ask_times_more(b: _Builder, x: Operand) -> Operand:
    high = min(5, MAX_VALUE // b.value(x))
    if high < 3:  # k = 2 gives x * 2 - x = x: the answer would be a value already on the page
        raise _Infeasible
    k = b.quantity(b.rng.randint(3, high))
    b.say("{Q} has {k} times as many {objs} as {P}.", k=k)
    b.say("How many more {objs} does {Q} have than {P}?")
    return b.step("-", b.step("*", x, k), x)


def _ask_with_carried(b: _Builder, x: Operand) -> Operand:
    carried = b.carried
    if carried is None:
        raise _Infeasible
    b.say(b.pick("How many {objs} do {P} and {R} have together now?", "How many {objs} do {R} and {P} have in total now?"))
    return b.step("+", x, carried)


_DISTRACTORS = (
    "{P} is {n} years old.",
    "{Q} has {n} {others}.",
    "{P} also has {n} {others}.",
    "The store is {n} miles from {P}'s home.",
    "It takes {P} {n} minutes to walk to the park.",
    "There are {n} students in {P}'s class.",
    "{R} owns {n} {others} but keeps them at home.",
)

# (clause, op cost, weight). Weights: roughly uniform over wordings, group clauses a bit rarer.
_STARTS = ((_start_has, 0, 3), (_start_groups, 1, 2), (_start_compare, 1, 2))
_UPDATES = (
    (_update_add, 1, 3),
    (_update_sub, 1, 3),
    (_update_mul, 1, 2),
    (_update_div, 1, 2),
    (_update_add_groups, 2, 2),
    (_update_sub_groups, 2, 2),
)
_QUESTIONS = (
    (_ask_now, 0, 4),
    (_ask_each, 1, 1),
    (_ask_worth, 1, 1),
    (_ask_together_more, 2, 1),
    (_ask_together_fewer, 2, 1),
    (_ask_times_more, 2, 1),
    (_ask_with_carried, 1, 2),
)
_NUMBER = re.compile(r"\d+")


def _choose(rng: random.Random, table: tuple, budget: int) -> tuple:
    options = [(fn, cost, w) for fn, cost, w in table if cost <= budget]
    fn, cost, _ = rng.choices(options, weights=[w for _, _, w in options])[0]
    return fn, cost


def _build_one(rng: random.Random, num_ops: int, problem_id: str) -> ArithProblem:
    b = _Builder(rng)
    start, start_cost = _choose(rng, _STARTS, num_ops)
    # A question that carries the stated count back only makes sense after a compare start.
    questions = _QUESTIONS if start is _start_compare else tuple(q for q in _QUESTIONS if q[0] is not _ask_with_carried)
    question, question_cost = _choose(rng, questions, num_ops - start_cost)
    x = start(b)
    budget = num_ops - start_cost - question_cost
    while budget > 0:
        update, cost = _choose(rng, _UPDATES, budget)
        x = update(b, x)
        budget -= cost
    n_question_sentences = len(b.sentences)
    x = question(b, x)
    values = [v for *_, v in b.program]
    # Distinct results, and an answer that is not a stated number: otherwise a wrong path can land
    # on the answer by copying (e.g. 9 * 11 = 99, 99 / 9 = 11), which blurs outcome vs process.
    if not values or len(set(values)) != len(values) or values[-1] in b.values:
        raise _Infeasible
    # Distractors go anywhere before the question block (never after the question is asked).
    question_block = b.sentences[n_question_sentences:]
    body = b.sentences[:n_question_sentences]
    for _ in range(rng.choices((0, 1, 2), weights=(4, 4, 2))[0]):
        # Never a value the solution writes: "The answer is 43" must not be copyable from a
        # distractor, and a distractor equal to an intermediate would make errors ambiguous.
        value = rng.choice([v for v in range(2, 61) if v not in values])
        n = b.quantity(value, distractor=True)
        b.say(rng.choice(_DISTRACTORS), n=n)
        body.insert(rng.randint(1, len(body)), b.sentences.pop())
    sentences = body + question_block
    # Renumber quantities by order of appearance in the text.
    order = [qid for _, ids in sentences for qid in ids]
    if sorted(order) != list(range(len(b.values))):
        raise AssertionError(f"sentences mention quantities {order}, expected each of {len(b.values)} once")
    new_index = {old: new for new, old in enumerate(order)}

    def renumber(o: Operand) -> Operand:
        return Operand("quantity", new_index[o.index]) if o.source == "quantity" else o

    prompt = " ".join(text for text, _ in sentences)
    quantities = tuple(b.values[old] for old in order)
    stated = tuple(int(m) for m in _NUMBER.findall(prompt))
    if stated != quantities:
        raise AssertionError(f"prompt states {stated} but the builder recorded {quantities}: {prompt!r}")
    program = tuple(ProgramStep(op, renumber(lhs), renumber(rhs), v) for op, lhs, rhs, v in b.program)
    return ArithProblem(
        problem_id=problem_id,
        prompt=prompt,
        answer=program[-1].value,
        quantities=quantities,
        program=program,
        distractors=tuple(sorted(new_index[d] for d in b.distractor_ids)),
    )


def generate_problems(
    n: int, seed: int, *, min_ops: int = MIN_OPS, max_ops: int = MAX_OPS
) -> list[ArithProblem]:
    """``n`` problems, a pure function of ``(n, seed, min_ops, max_ops)``.

    The number of operations is drawn uniformly from ``[min_ops, max_ops]``. Problem ``i`` has id
    ``arith-s{seed}-{i}``; ``generate_problems(n, s)`` is a prefix of ``generate_problems(m, s)``
    for ``m >= n`` (each problem draws from its own sub-seed), so sampling more never reshuffles.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 1 <= min_ops <= max_ops:
        raise ValueError(f"need 1 <= min_ops <= max_ops, got min_ops={min_ops}, max_ops={max_ops}")
    master = random.Random(seed)
    problems = []
    for i in range(n):
        rng = random.Random(master.getrandbits(64))
        num_ops = rng.randint(min_ops, max_ops)
        for _ in range(1000):  # a handful of retries suffice in practice; 1000 only bounds a bug
            try:
                problems.append(_build_one(rng, num_ops, f"arith-s{seed}-{i}"))
                break
            except _Infeasible:
                continue
        else:
            raise RuntimeError(f"could not build a {num_ops}-op problem for seed {seed}, index {i}")
    return problems
