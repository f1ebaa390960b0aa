import numpy as np

from vcconv.eval.corpus import equal_error_rate, heldout_pairs
from vcconv.data.manifest import Utterance, write_manifest


def test_equal_error_rate():
    rng = np.random.default_rng(0)
    assert equal_error_rate(np.full(50, 0.9), np.full(50, 0.1)) == 0.0
    same = rng.normal(0, 1, 2000)
    assert abs(equal_error_rate(same, rng.normal(0, 1, 2000)) - 0.5) < 0.05


def test_heldout_pairs_every_ordered_pair_with_parallel_targets(tmp_path):
    rows = []
    for spk in ("a", "b", "c"):
        for i in range(5):
            rows.append(Utterance(f"{spk}_{i}", spk, f"/x/{spk}_{i}.wav", 1.0, f"sentence {i}", "", "test"))
    write_manifest(rows, tmp_path / "m.tsv")
    pairs = heldout_pairs(tmp_path / "m.tsv", tmp_path / "out", n_sentences=3)
    assert len(pairs) == 3 * 2 * 3
    assert {(p["source_speaker"], p["target_speaker"]) for p in pairs} == {
        (s, t) for s in "abc" for t in "abc" if s != t}
    for p in pairs:
        # the reference is a different sentence; the parallel target is the same sentence
        assert p["target"] != p["parallel_target"]
        assert p["parallel_target"].endswith(p["source"].split("_")[-1])
        assert p["parallel_target"].startswith(f"/x/{p['target_speaker']}_")
    assert len({p["output"] for p in pairs}) == len(pairs)
