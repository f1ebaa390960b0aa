"""Linear probes and code-phone scores on made-up codes, and run_probes on a tiny tone corpus (CPU, seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from vcconv.data.manifest import Utterance, write_manifest
from vcconv.data.phones import write_alignment
from vcconv.eval.probe import (
    CodeExtractor,
    code_phone_scores,
    contingency,
    fit_linear_probe,
    normalized_mutual_information,
    probe_accuracy,
    purity,
    run_probes,
)

SR = 16000


# --------------------------------------------------------------------------- probes on arrays


def _speaker_codes(n_per: int, n_speakers: int, dim: int, signal: float, rng: np.random.Generator):
    y = np.repeat(np.arange(n_speakers), n_per)
    x = rng.normal(size=(len(y), dim)).astype(np.float32)
    x[:, :n_speakers] += signal * np.eye(n_speakers, dtype=np.float32)[y]  # speaker id written into the code
    return x, np.array([f"spk{k}" for k in y])


def test_probe_finds_speaker_written_into_codes():
    rng = np.random.default_rng(0)
    x_tr, y_tr = _speaker_codes(20, 5, 12, 4.0, rng)
    x_te, y_te = _speaker_codes(20, 5, 12, 4.0, rng)
    res = probe_accuracy(x_tr, y_tr, x_te, y_te)
    assert res["accuracy"] > 0.9
    assert res["chance"] == pytest.approx(0.2)
    assert (res["n_train"], res["n_test"], res["n_classes"]) == (100, 100, 5)


def test_mlp_probe_reads_what_instance_norm_leaves_and_the_linear_probe_cannot():
    # classes differ only in their variance pattern (equal zero means, as after instance norm):
    # the linear optimum is a constant guess, one hidden layer separates them
    rng = np.random.default_rng(3)

    def codes(n_per):
        y = np.repeat(np.arange(3), n_per)
        scale = np.array([[1.0, 1.0, 1.0, 1.0], [3.0, 0.3, 1.0, 1.0], [0.3, 3.0, 1.0, 1.0]], np.float32)[y]
        x = (rng.normal(size=(len(y), 4)) * scale).astype(np.float32)
        return x - x.mean(axis=0), np.array([f"spk{k}" for k in y])

    x_tr, y_tr = codes(300)
    x_te, y_te = codes(300)
    linear = probe_accuracy(x_tr, y_tr, x_te, y_te)
    mlp = probe_accuracy(x_tr, y_tr, x_te, y_te, kind="mlp")
    assert linear["accuracy"] < 0.45
    assert mlp["accuracy"] > 0.6
    with pytest.raises(ValueError, match="kind"):
        probe_accuracy(x_tr, y_tr, x_te, y_te, kind="forest")


def test_probe_on_random_codes_is_near_chance():
    rng = np.random.default_rng(1)
    x_tr, y_tr = _speaker_codes(100, 4, 8, 0.0, rng)
    x_te, y_te = _speaker_codes(100, 4, 8, 0.0, rng)
    res = probe_accuracy(x_tr, y_tr, x_te, y_te)
    assert abs(res["accuracy"] - 0.25) < 0.1


def test_probe_is_deterministic_and_standardises():
    rng = np.random.default_rng(2)
    x, y = _speaker_codes(10, 3, 4, 3.0, rng)
    a = fit_linear_probe(x * 1000.0 + 50.0, y)  # scale and offset must not matter
    b = fit_linear_probe(x * 1000.0 + 50.0, y)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert np.mean(a.predict(x * 1000.0 + 50.0) == y) > 0.9
    assert a.log_proba(x[:3]).shape == (3, 3)


def test_majority_chance_and_unseen_test_labels():
    x = np.array([[0.0], [1.0], [0.0], [1.0]], np.float32)
    res = probe_accuracy(x, ["a", "b", "a", "b"], x[:3], ["a", "b", "c"], chance="majority")
    assert res["accuracy"] == pytest.approx(2 / 3)  # "c" was never trained on: an error
    assert res["chance"] == pytest.approx(1 / 3) and res["n_classes"] == 3
    res = probe_accuracy(x, ["a", "b", "a", "b"], x[:3], ["a", "b", "a"], chance="majority")
    assert res["chance"] == pytest.approx(2 / 3) and res["accuracy"] == 1.0


# --------------------------------------------------------------------------- discrete codes


def test_nmi_identical_renamed_and_independent():
    a = np.array([0, 0, 1, 1, 2, 2, 2])
    assert normalized_mutual_information(a, a) == pytest.approx(1.0)
    assert normalized_mutual_information(a, a * 10 + 7) == pytest.approx(1.0)  # names do not matter
    rng = np.random.default_rng(0)
    assert normalized_mutual_information(rng.integers(0, 5, 20000), rng.integers(0, 7, 20000)) < 0.01
    assert normalized_mutual_information([1, 1, 1], [2, 2, 2]) == 1.0
    assert normalized_mutual_information([1, 1, 1], [1, 2, 3]) == 0.0


def test_nmi_known_value():
    # a = [0,0,1,1], b = [0,0,0,1]: I = H(b) - H(b|a) = 0.5623 - 0.3466 nats, H(a) = ln 2
    a, b = [0, 0, 1, 1], [0, 0, 0, 1]
    h_a, h_b = np.log(2), -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    mi = h_b - 0.5 * np.log(2)
    assert normalized_mutual_information(a, b) == pytest.approx(mi / ((h_a + h_b) / 2))


def test_purity_and_contingency():
    codes = [0, 0, 0, 1, 1, 2]
    phones = ["aa", "aa", "iy", "iy", "iy", "s"]
    np.testing.assert_array_equal(contingency(codes, phones), [[2, 1, 0], [0, 2, 0], [0, 0, 1]])
    assert purity(codes, phones) == pytest.approx(5 / 6)
    assert purity(phones, codes) == pytest.approx(5 / 6)  # aa->0 (2), iy->1 (2 of 3), s->2
    scores = code_phone_scores(codes, phones)
    assert scores["n_codes"] == 3 and scores["n_phones"] == 3 and scores["n_frames"] == 6
    assert 0.0 < scores["nmi"] < 1.0
    with pytest.raises(ValueError):
        contingency([0, 1], [0])


def test_extractor_accepts_callables_and_rejects_others():
    ext = CodeExtractor(lambda mel: mel[:, :4])
    assert ext.content(np.zeros((80, 7), np.float16)).shape == (4, 7)
    assert not ext.has_speaker and not ext.has_codes and ext.speaker(np.zeros((80, 7))) is None
    with pytest.raises(TypeError):
        CodeExtractor(42)


# --------------------------------------------------------------------------- end to end on tones

PHONE_HZ = {"aa": 300.0, "iy": 700.0, "s": 1500.0}
SEGMENTS = [(0.0, 0.2, "sil"), (0.2, 0.45, "aa"), (0.45, 0.7, "iy"), (0.7, 0.95, "s")]


def _utterance(scale: float, seed: int) -> np.ndarray:
    """0.2 s of silence then one tone per phone (speaker = a frequency scale)."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(int(0.2 * SR), np.float32)]
    for start, end, ph in SEGMENTS[1:]:
        t = np.arange(int(round((end - start) * SR))) / SR
        f = PHONE_HZ[ph] * scale * rng.uniform(0.98, 1.02)
        parts.append((0.3 * np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t)).astype(np.float32))
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def tone_corpus(tmp_path_factory):
    """3 test speakers x 4 utterances, 2 training speakers x 3, with alignments; manifest.tsv in the root."""
    root = tmp_path_factory.mktemp("tones")
    rows = []
    speakers = [("t1", 1.0, "test"), ("t2", 1.3, "test"), ("t3", 1.7, "test"), ("r1", 1.15, "train"), ("r2", 1.5, "train")]
    for n, (spk, scale, split) in enumerate(speakers):
        for k in range(4 if split == "test" else 3):
            utt = f"{spk}_{k}"
            wav, phones = root / spk / f"{utt}.wav", root / spk / f"{utt}.phones"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(wav), _utterance(scale, seed=10 * n + k), SR)
            write_alignment(phones, SEGMENTS)
            rows.append(Utterance(utt, spk, str(wav), 0.95, "", str(phones), split))
    return write_manifest(rows, root / "manifest.tsv")


class FakeModel:
    """Content = the log-mel itself (holds speaker and phone), speaker = its time mean, codes = loudest bin."""

    def content(self, mel: torch.Tensor) -> torch.Tensor:
        return mel

    def speaker(self, mel: torch.Tensor) -> torch.Tensor:
        return mel.mean(dim=-1)

    def codes(self, mel: torch.Tensor) -> torch.Tensor:
        return mel.argmax(dim=1)


def test_run_probes_end_to_end(tone_corpus):
    res = run_probes(FakeModel(), tone_corpus, max_utts=4, seed=0)
    info = res["info"]
    assert info["speakers"] == ["t1", "t2", "t3"]
    assert info["phone_train_speakers"] == ["r1", "r2"]
    assert info["n_utts"] == {"probe_train": 6, "probe_test": 6, "phone_train": 6}
    assert (tone_corpus.parent / "cache").is_dir()  # features were computed on the way
    for key in ("speaker_from_content", "speaker_from_speaker_vector", "speaker_from_content_frames", "phone_from_content"):
        assert 0.0 <= res[key]["accuracy"] <= 1.0, key
    assert res["speaker_from_speaker_vector"]["chance"] == pytest.approx(1 / 3)
    assert res["speaker_from_speaker_vector"]["accuracy"] == 1.0
    assert res["speaker_from_content_frames"]["accuracy"] > 0.8
    assert res["speaker_from_content_frames"]["utterance_vote_accuracy"] == 1.0
    assert res["speaker_from_content_frames_mlp"]["accuracy"] > 0.8
    phone = res["phone_from_content"]
    assert phone["n_classes"] == 3  # sil dropped
    assert phone["accuracy"] > phone["chance"] + 0.2
    codes = res["code_phone"]
    assert 0.0 <= codes["nmi"] <= 1.0 and codes["purity"] >= 1 / 3
    assert "_probe" not in phone
    json.dumps(res)  # every figure is plain JSON

    with_sil = run_probes(FakeModel(), tone_corpus, max_utts=4, keep_sil=True, context=1)
    assert with_sil["phone_from_content"]["n_classes"] == 4
    assert with_sil["phone_from_content"]["context"] == 1


def test_run_probes_with_a_callable_and_a_cli_model(tone_corpus, tmp_path):
    res = run_probes(lambda mel: mel, tone_corpus, max_utts=2)
    assert "speaker_from_speaker_vector" not in res and "code_phone" not in res
    assert "speaker_from_speaker_vector" in res["info"]["skipped"]
    assert res["info"]["n_utts"]["probe_train"] == 3  # 2 utterances per speaker, one each side

    from vcconv.checkpoint import save_safetensors
    from vcconv.cli import main
    from vcconv.config import RunConfig
    from vcconv.models import build_model

    cfg = RunConfig(model_kind="adain", model={"channels": 16, "content_dim": 4, "speaker_dim": 8,
                                               "enc_blocks": 1, "dec_blocks": 1, "spk_blocks": 1})  # fmt: skip
    model_path = save_safetensors(build_model("adain", cfg.model), cfg, tmp_path / "tiny.safetensors")
    out = tmp_path / "probe.json"
    main(["probe", str(model_path), "--data", str(tone_corpus), "--max-utts", "2", "--json", str(out), "--device", "cpu"])
    figures = json.loads(out.read_text())
    assert figures["info"]["content_dim"] == 4
    assert {"speaker_from_content", "speaker_from_speaker_vector", "phone_from_content"} <= set(figures)
