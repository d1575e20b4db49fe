import duckdb
import pytest

from prmflow.analysis.gold import gold_metrics_dicts


def make(rows):
    con = duckdb.connect()
    con.execute("""CREATE TABLE steps (source VARCHAR, method VARCHAR, trajectory_id VARCHAR, step_index INT,
                   gold_first_error INT, gold_label DOUBLE, label DOUBLE)""")
    con.executemany("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return con


def traj(tid, gold_fe, labels, gold=None):
    n = len(labels)
    gold = gold or [1.0 if gold_fe == -1 or i < gold_fe else 0.0 for i in range(n)]
    return [("s", "mc", tid, i, gold_fe, gold[i], labels[i]) for i in range(n)]


def test_processbench_f1_step_accuracy_and_error_precision_recall():
    rows = (
        traj("a", 1, [1, 0, 0])      # first error found
        + traj("b", 2, [1, 1, 1])    # missed: predicted no error
        + traj("c", -1, [1, 1])      # correct, predicted correct
        + traj("d", -1, [1, 0])      # correct, false alarm at step 1
    )
    (m,) = gold_metrics_dicts(make(rows))
    assert (m["erroneous"], m["correct"]) == (2, 2)
    assert m["acc_erroneous"] == 0.5 and m["acc_correct"] == 0.5
    assert m["processbench_f1"] == pytest.approx(0.5)
    # scored steps: a[0..1], b[0..2], c[0..1], d[0..1] = 9; right: a0 a1 b0 b1 c0 c1 d0 = 7
    assert m["step_accuracy"] == pytest.approx(7 / 9)
    # predicted errors among scored: a1, d1 -> tp = a1; gold errors: a1, b2
    assert m["error_precision"] == pytest.approx(0.5) and m["error_recall"] == pytest.approx(0.5)


def test_unlabeled_trajectories_and_outcome_rows_are_not_scored():
    rows = traj("a", 0, [0, 0]) + [("s", "mc", "u", 0, 0, 0.0, None)] + [("s", "outcome", "o", 0, -1, 1.0, None)]
    (m,) = gold_metrics_dicts(make(rows))
    assert (m["erroneous"], m["acc_erroneous"]) == (1, 1.0)
