"""``schemas.base.fast_init`` and ``replace``: records made and copied without ``object.__setattr__``
per field behave as the ``dataclass``-written ones do: same signature, defaults, factories, errors,
equality, hashing, pickling and frozenness."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import random

import pytest

from prmflow.schemas import TABLES, Trajectory
from prmflow.schemas.base import fast_init, replace
from prmflow.sources.base import Draft, Parsed, RawRecord

RECORDS = [cls for cls, _ in TABLES.values()] + [RawRecord, Draft, Parsed]


def plain(cls: type) -> type:
    """The same class as ``dataclass`` alone would make it (no fast_init)."""
    namespace = {name: value for name, value in cls.__dict__.items()
                 if name not in ("__dict__", "__weakref__", "__init__", "__fast_fields__", "__dataclass_fields__",
                                 "__dataclass_params__", "__match_args__", "__eq__", "__hash__", "__repr__",
                                 "__setattr__", "__delattr__")}
    for f in dataclasses.fields(cls):
        namespace[f.name] = f if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING \
            else dataclasses.field(default=f.default, default_factory=f.default_factory, metadata=f.metadata)
    namespace["__annotations__"] = dict(cls.__annotations__)
    return dataclasses.dataclass(frozen=True)(type(cls.__name__, (), namespace))


def values(cls: type, rng: random.Random) -> dict:
    return {f.name: rng.choice([None, f"{f.name}-{rng.randint(0, 9)}", rng.randint(0, 9), (1, 2)])
            for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_fast_init_is_the_dataclass_init(cls):
    slow = plain(cls)
    assert slow.__init__ is not cls.__init__
    assert inspect.signature(cls.__init__) == inspect.signature(slow.__init__)
    rng = random.Random(0)
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    for _ in range(20):
        kwargs = values(cls, rng)
        assert vars(cls(**kwargs)) == vars(slow(**kwargs))
        positional = list(kwargs.values())
        assert vars(cls(*positional)) == vars(slow(*positional))
        least = {name: kwargs[name] for name in required}  # the defaults and factories
        assert vars(cls(**least)) == vars(slow(**least))
    with pytest.raises(TypeError):
        cls(**least, no_such_field=1)
    if required:
        with pytest.raises(TypeError):
            cls()


def test_fast_records_stay_frozen_equal_hashable_and_picklable():
    t = Trajectory(trajectory_id="t", problem_id="p", source="s", domain="d", origin="o", text="a",
                   steps=("a",), step_spans=((0, 1),), step_segments=("response",), metadata={"k": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.outcome = 1.0
    same = Trajectory(**{f.name: getattr(t, f.name) for f in dataclasses.fields(t)})
    assert same == t and same is not t
    assert pickle.loads(pickle.dumps(t)) == t
    d = Draft(text="x")
    assert hash(d) == hash(Draft(text="x")) and Parsed(problem=None).drafts == ()


def test_replace_is_dataclasses_replace():
    t = Trajectory(trajectory_id="t", problem_id="p", source="s", domain="d", origin="o", text="a",
                   steps=("a",), step_spans=((0, 1),), step_segments=("response",))
    new = replace(t, outcome=1.0, final_answer="7")
    assert new == dataclasses.replace(t, outcome=1.0, final_answer="7")
    assert t.outcome is None and new is not t and vars(new) is not vars(t)
    with pytest.raises(TypeError, match="no field 'outcom'"):
        replace(t, outcom=1.0)


def test_fast_init_runs_post_init_and_refuses_what_it_cannot_copy():
    @fast_init
    @dataclasses.dataclass(frozen=True)
    class Checked:
        n: int
        tags: tuple = dataclasses.field(default_factory=tuple)

        def __post_init__(self):
            if self.n < 0:
                raise ValueError("n < 0")

    assert Checked(1).tags == () and Checked(2, ("a",)).tags == ("a",)
    with pytest.raises(ValueError):
        Checked(-1)
    with pytest.raises(ValueError):
        replace(Checked(1), n=-1)

    with pytest.raises(TypeError, match="not a plain field"):
        @fast_init
        @dataclasses.dataclass(frozen=True)
        class WithInitVar:
            n: dataclasses.InitVar[int]

    with pytest.raises(TypeError, match="keyword-only"):
        @fast_init
        @dataclasses.dataclass(frozen=True)
        class Hidden:
            n: int = dataclasses.field(init=False, default=0)
