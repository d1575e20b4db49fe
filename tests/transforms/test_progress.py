"""Progress lines: the fraction of a file read and the time left."""

from prmflow.transforms import progress


def test_file_progress_reports_fraction_and_eta(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    p = progress.FileProgress("g: d.jsonl (share 1/2)", total_bytes=1000)
    p.count = 50
    now[0] = 110.0  # 10 s for a quarter of the file: 30 s left
    assert p.line(250) == "g: d.jsonl (share 1/2): 50 records, 25.0% of the file, ETA 30s"
    assert p.line(None) == "g: d.jsonl (share 1/2): 50 records"  # no position (Parquet)
    assert progress.FileProgress("x", None).line(10) == "x: 0 records"


def test_eta_text():
    assert progress.eta_text(59) == "59s"
    assert progress.eta_text(61) == "1m01s"
    assert progress.eta_text(3 * 3600 + 120) == "3h02m"
