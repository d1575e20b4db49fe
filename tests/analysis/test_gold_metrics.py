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


def test_judge_and_consensus_rows_beside_the_method():
    con = duckdb.connect()
    con.execute("""CREATE TABLE steps (source VARCHAR, method VARCHAR, trajectory_id VARCHAR, step_index INT,
                   gold_first_error INT, gold_label DOUBLE, label DOUBLE, consensus BOOLEAN)""")
    con.execute("""CREATE TABLE trajectories (trajectory_id VARCHAR, judge_first_error INT, judge_votes INT)""")
    # a: gold error at 1, mc finds it, judge says 2 (no consensus); b: correct, both agree; c: gold error at 0,
    # mc misses it, judge finds it (no consensus); d: judge unparsed
    steps = {"a": (1, [1, 0, 0], False), "b": (-1, [1, 1], True), "c": (0, [1, 1], False), "d": (-1, [1, 1], None)}
    for tid, (gold_fe, labels, kept) in steps.items():
        for i, label in enumerate(labels):
            gold = 1.0 if gold_fe == -1 or i < gold_fe else 0.0
            con.execute("INSERT INTO steps VALUES ('s', 'mc', ?, ?, ?, ?, ?, ?)", [tid, i, gold_fe, gold, label, kept])
    con.executemany("INSERT INTO trajectories VALUES (?, ?, ?)",
                    [("a", 2, 4), ("b", -1, 4), ("c", 0, 4), ("d", None, 4)])
    rows = {m["method"]: m for m in gold_metrics_dicts(con)}
    assert set(rows) == {"mc", "judge", "mc+consensus"}
    assert (rows["mc"]["acc_erroneous"], rows["mc"]["kept"]) == (0.5, 1.0)
    judge = rows["judge"]  # d is unparsed: not scored
    assert (judge["erroneous"], judge["correct"], judge["acc_erroneous"], judge["acc_correct"]) == (2, 1, 0.5, 1.0)
    assert judge["kept"] == 0.75 and judge["first_error_precision"] == 0.5
    cons = rows["mc+consensus"]
    assert (cons["erroneous"], cons["correct"], cons["kept"]) == (0, 1, 0.25)
