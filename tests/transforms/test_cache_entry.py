"""Stage-cache entries (core/cache_entry.py, transforms/cache.py): every way an entry can be wrong
has its own stable reason, and a good entry reads back equal to what was stored."""

from __future__ import annotations

import json
import pickle

import pytest

from prmflow.core import cache_entry
from prmflow.core.cache_entry import Rejected, decode, encode
from prmflow.samplers.base import Completion, SamplingResult
from prmflow.transforms.cache import MARKER, StageCache, open_cache

MEMBERS = ["r1", "r2"]
RESULTS = [SamplingResult("r1", (Completion(0, "2 + 2 = 4", (1, 2), "stop", -0.5),), 7, 0),
           SamplingResult("r2", (), 9, 0, error="prompt_too_long: 300 tokens")]


def _entry(value=None, members=MEMBERS, key="k") -> bytes:
    plain = cache_entry.SAMPLING.encode(RESULTS) if value is None else value
    return encode("sample", "d", key, members, plain)


def _read(data: bytes, members=MEMBERS):
    return cache_entry.SAMPLING.decode(decode(data, "sample", "d", "k", members), members)


def test_a_good_entry_reads_back_equal():
    assert _read(_entry()) == RESULTS


def _body_edit(data: bytes) -> bytes:
    head, body = data.split(b"\n", 1)
    return head + b"\n" + body.replace(b"2 + 2 = 4", b"2 + 2 = 5")


@pytest.mark.parametrize("data, members, reason", [
    (pickle.dumps(RESULTS), MEMBERS, "format"),                                     # a pickle
    (b"", MEMBERS, "format"),                                                        # empty / truncated
    (_entry().split(b"\n", 1)[0], MEMBERS, "format"),                                # the header alone
    (encode("rollout", "d", "k", MEMBERS, []), MEMBERS, "digest"),                  # another stage
    (encode("sample", "other", "k", MEMBERS, []), MEMBERS, "digest"),               # another config
    (_entry(key="k2"), MEMBERS, "key"),                                              # swapped in from k2
    (_entry(), ["r1", "r3"], "members"),                                             # another batch
    (_body_edit(_entry()), MEMBERS, "checksum"),                                     # edited by hand
    (_entry()[:-3], MEMBERS, "checksum"),                                            # truncated value
    (_entry(value={"not": "a list"}), MEMBERS, "shape"),
    (_entry(value=[json.loads(json.dumps(cache_entry.to_plain(r))) for r in RESULTS[::-1]]), MEMBERS, "shape"),
    (_entry(value=[{**cache_entry.to_plain(RESULTS[0]), "extra": 1}, cache_entry.to_plain(RESULTS[1])]),
     MEMBERS, "shape"),
    (_entry(value=[{**cache_entry.to_plain(RESULTS[0]), "prompt_tokens": "7"}, cache_entry.to_plain(RESULTS[1])]),
     MEMBERS, "shape"),
    (_entry(value=cache_entry.to_plain(RESULTS[:1])), MEMBERS, "shape"),             # one result short
], ids=["pickle", "empty", "header-only", "stage", "config", "key", "members", "edited", "truncated",
        "not-a-list", "results-swapped", "extra-field", "wrong-type", "short"])
def test_a_bad_entry_is_rejected_with_its_reason(data, members, reason):
    with pytest.raises(Rejected) as e:
        _read(data, members)
    assert e.value.reason == reason


def test_the_stage_cache_counts_a_rejected_entry_as_missing(tmp_path, caplog):
    root = open_cache(str(tmp_path / "_cache"))
    cache = StageCache(root, "sample", "d")
    cache.store(MEMBERS, RESULTS)
    assert (tmp_path / "_cache" / MARKER).is_file()
    assert cache.load(MEMBERS) == RESULTS
    path = cache.path(MEMBERS)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(_body_edit(data))
    assert cache.load(MEMBERS) is None
    assert "stage cache: not using" in caplog.text and "checksum:" in caplog.text


def test_a_foreign_cache_directory_is_not_used(tmp_path, caplog):
    (tmp_path / "_cache").mkdir()
    (tmp_path / "_cache" / "theirs.db").write_text("x")
    assert open_cache(str(tmp_path / "_cache")) is None
    assert "is not prmflow's" in caplog.text
    assert open_cache(str(tmp_path / "fresh")) == str(tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()  # nothing is created until an entry is stored
