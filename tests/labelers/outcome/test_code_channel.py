"""The plain-data channel between the judge and the solution: what crosses, what is refused, and a
judge that never trusts a reply (no sandbox here: the pieces are pure and run in this process)."""

from __future__ import annotations

import collections
import enum
import math
import os

import pytest

from prmflow.labelers.outcome import code_judge
from prmflow.labelers.outcome.code_channel import ChannelError, Line, dumps, loads, to_plain


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 10**5000, -(10**5000), 1.5, -0.0, math.inf, -math.inf, "", "héllo\u2028", "\ud800",
    b"\x00\xff", bytearray(b"ab"), 1 + 2j, [], (), (1,), [1, (2, 3), {4, 5}], frozenset({1, "a"}),
    {1: "a", "1": 2, (1, 2): [3], None: {True: False}}, {"$": "t", "v": [1]}, [[[[]]]],
], ids=lambda v: type(v).__name__)
def test_plain_values_cross_exactly(value):
    back = loads(dumps(to_plain(value)))
    assert back == value and type(back) is type(value)
    if isinstance(value, (list, tuple)):
        assert [type(x) for x in back] == [type(x) for x in value]


def test_nan_crosses_as_nan():
    assert math.isnan(loads(dumps(to_plain(float("nan")))))


def test_bool_and_int_and_float_stay_apart():
    assert [type(x) for x in loads(dumps(to_plain([True, 1, 1.0])))] == [bool, int, float]


class Eq:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class Colour(enum.IntEnum):
    RED = 1


Point = collections.namedtuple("Point", "x y")


@pytest.mark.parametrize("value,what", [
    (Eq(), "Eq, not plain data"),
    ([1, [Eq()]], "Eq, not plain data"),
    ({Eq(): 1}, "Eq, not plain data"),
    (Colour.RED, "Colour, not plain data"),
    (Point(1, 2), "Point, not plain data"),
    (collections.Counter("ab"), "Counter, not plain data"),
    (iter([1]), "list_iterator, not plain data"),
    (print, "builtin_function_or_method, not plain data"),
])
def test_objects_do_not_cross(value, what):
    with pytest.raises(ChannelError, match=what):
        to_plain(value)


def test_builtin_subclasses_cross_by_value_when_allowed():
    assert loads(dumps(to_plain([Colour.RED, Point(1, 2), collections.Counter("aab")], by_value=True))) == [
        1, (1, 2), {"a": 2, "b": 1}]

    class Liar(int):
        def __int__(self):
            return 99

        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    back = loads(dumps(to_plain(Liar(3), by_value=True)))
    assert type(back) is int and back == 3  # the builtin's own conversion, not the subclass's


def test_a_value_that_contains_itself_is_refused():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ChannelError, match="nested deeper than 200"):
        to_plain(loop)


@pytest.mark.parametrize("line", [
    b"", b"not json", b'{"$": "x", "v": 1}', b'{"$": "t"}', b'{"$": "s", "v": [[1]]}', b'{"$": "d", "v": [[[1], 2]]}',
    b'{"$": "b", "v": "zz"}', b'{"$": "i", "v": "0xq"}', b'{"event": "done"}', b"[" * 100_000, b"1" * 5000,
], ids=lambda v: v[:20].decode())
def test_malformed_messages_are_channel_errors(line):
    with pytest.raises(ChannelError):
        loads(line)


def test_line_reader_caps_a_message():
    r, w = os.pipe()
    try:
        os.write(w, b"12\n" + b"x" * 200 + b"\n")
        os.close(w)
        reader = Line(r, 100)
        assert reader.read() == b"12"
        with pytest.raises(ChannelError, match="longer than 100 bytes"):
            reader.read()
    finally:
        os.close(r)


def _judge_channel(replies: list[bytes]):
    """A judge Channel whose solution answers with ``replies`` (already written, in order)."""
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    os.write(rep_w, b"".join(replies))
    os.close(rep_w)
    return code_judge.Channel(req_w, rep_r, 1 << 16), (req_r, req_w, rep_r)


@pytest.mark.parametrize("reply,raised,match", [
    (b'["return", 1, 3, []]\n', None, None),
    (b'["return", 2, 3, []]\n', code_judge.SolutionGone, "out of turn"),
    (b'{"event": "done", "passed": 1, "total": 1}\n', code_judge.SolutionGone, "broke the channel"),
    (b'["raise", 1, "ValueError", "bad", ["bad"]]\n', ValueError, "bad"),
    (b'["raise", 1, "SystemExit", "0", [0]]\n', code_judge.SolutionError, "SystemExit: 0"),
    (b'["raise", 1, "solution.Oops", "x", null]\n', code_judge.SolutionError, "solution.Oops: x"),
    (b'["unplain", 1, "a solution.Eq, not plain data"]\n', TypeError, "returned a solution.Eq, not plain data"),
    (b"", code_judge.SolutionGone, "process ended"),
])
def test_the_judge_believes_only_well_formed_replies_in_turn(reply, raised, match):
    channel, fds = _judge_channel([reply])
    try:
        if raised is None:
            assert channel.call("add", (1, 2), {}) == 3
        else:
            with pytest.raises(raised, match=match):
                channel.call("add", (1, 2), {})
            if raised is code_judge.SolutionGone:  # and every call after that fails too
                with pytest.raises(code_judge.SolutionGone):
                    channel.call("add", (1, 2), {})
    finally:
        for fd in fds:
            os.close(fd)


def test_solution_gone_is_not_swallowed_by_except_exception():
    assert not issubclass(code_judge.SolutionGone, Exception)


def test_in_place_changes_come_back_to_the_judge():
    channel, fds = _judge_channel([b'["return", 1, null, [[0, [1, 2, 3]], [1, {"$": "d", "v": [["k", 1]]}]]]\n'])
    xs, d = [3, 1, 2], {}
    try:
        assert channel.call("sort", (xs, d), {}) is None
    finally:
        for fd in fds:
            os.close(fd)
    assert xs == [1, 2, 3] and d == {"k": 1}


def test_only_names_the_prelude_and_builtins_leave_free_come_from_the_solution():
    namespace = {"poly": "the prelude's", "find_zero": "the stub"}
    names = [["poly", "callable", None], ["find_zero", "callable", None], ["abs", "callable", None],
             ["math", "module", "math"], ["antigravity", "module", "antigravity"], ["cmath", "module", "math"],
             ["path", "module", "os.path"], ["N", "value", 3], ["__x", "value", 1],
             ["not an id", "value", 1], "junk", ["helper", "callable", None]]
    code_judge.bind_solution(namespace, names, channel=None, entry_point="find_zero")
    assert namespace["poly"] == "the prelude's"
    assert isinstance(namespace["find_zero"], code_judge.Remote) and isinstance(namespace["helper"], code_judge.Remote)
    assert namespace["math"] is math and namespace["path"] is os.path and namespace["N"] == 3
    assert not {"abs", "antigravity", "cmath", "__x", "not an id"} & set(namespace)
