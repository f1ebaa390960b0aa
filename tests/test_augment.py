"""Channel augmentation: each transform does what it says, the chain is seeded, the waveform
sampler keeps the target clean, and a training run with augmentation on resumes."""

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from conftest import make_tone_corpus
from vcconv.audio import AudioConfig, log_mel
from vcconv.config import AugmentConfig, RunConfig, apply_overrides
from vcconv.data import augment as A
from vcconv.errors import ConfigError

SR = 16000


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small tensors: one intra-op thread (two spin-wait against each other on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def white():
    return (np.random.default_rng(0).standard_normal(3 * SR) * 0.05).astype(np.float32)


def _psd_db(x):
    """Welch power density in dB: ``(freqs (513,), dB (513,))``."""
    f, p = signal.welch(x.astype(np.float64), SR, nperseg=1024, detrend=False)
    return f, 10 * np.log10(p + 1e-30)


def _bursts(rng, n_bursts=6):
    """A speech-like test signal with a known active part: 200 ms bursts of a harmonic sound at
    random levels (within 12 dB), 200 ms of exact silence between, aligned to 20 ms frames."""
    seg = int(0.2 * SR)
    t = np.arange(seg) / SR
    parts, active = [], []
    for _ in range(n_bursts):
        f0 = rng.uniform(100, 200)
        burst = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 12))
        parts += [burst * 0.1 * 10 ** (rng.uniform(-12, 0) / 20), np.zeros(seg)]
        active += [np.ones(seg, bool), np.zeros(seg, bool)]
    return np.concatenate(parts).astype(np.float32), np.concatenate(active)


# ----------------------------------------------------------------- band limits


@pytest.mark.parametrize("cutoff", [3400.0, 4000.0, 5500.0, 7000.0])
def test_lowpass_leaves_nothing_above_the_cutoff(white, cutoff):
    f, out = _psd_db(A.lowpass(white, SR, cutoff))
    _, ref = _psd_db(white)
    passband = f <= 0.9 * cutoff
    assert np.abs(out[passband] - ref[passband]).max() < 0.5  # flat pass band
    stop = out[f >= cutoff + 50] - ref[passband].mean()
    assert stop.max() < -40  # measured about -69 dB (3.4 kHz) to -78 dB (7 kHz)


def test_telephone_band_and_narrowband_codec(white):
    for codec in (False, True):
        out = A.telephone(white, SR, codec=codec)
        f, p = _psd_db(out)
        _, ref = _psd_db(white)
        band = (f >= 300) & (f <= 3300)
        assert np.abs(p[band] - ref[band]).max() < 1.0
        assert (p[f >= 3450] - ref[band].mean()).max() < -40  # nothing above the band, let alone 4 kHz
        assert (p[f <= 150] - ref[band].mean()).max() < -40
    # the codec quantises at 8 kHz: the narrow-band signal has at most 256 levels, so the output differs
    assert not np.allclose(A.telephone(white, SR, codec=True), A.telephone(white, SR, codec=False), atol=1e-4)


def test_mu_law_levels_and_fidelity():
    x, _ = _bursts(np.random.default_rng(1))
    for bits, min_snr in ((8, 30.0), (4, 8.0)):
        y = A.mu_law(x, bits)
        assert len(np.unique(y)) <= 2**bits
        snr = 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum((y - x).astype(np.float64) ** 2))
        assert snr > min_snr  # 8 bit: about 38 dB
    assert np.abs(A.mu_law(np.array([1.7, -2.0], np.float32), 8)).max() <= 1.0  # clipped like a codec


def test_spectral_quantise_grid_floor_and_strength(white):
    mag = np.abs(np.random.default_rng(2).standard_normal((257, 40))) + 1e-3
    q = A.quantise_spectrum(mag, 3.0, 30.0)
    kept = q > 0
    db = 20 * np.log10(q[kept])
    assert np.allclose(db / 3.0, np.round(db / 3.0), atol=1e-6)  # on the 3 dB grid
    peak = 20 * np.log10(mag.max(axis=0, keepdims=True))
    assert np.array_equal(~kept, 20 * np.log10(mag) < peak - 30.0)  # dropped exactly under the floor
    # the waveform version: unchanged with no quantisation, worse with coarser steps
    assert np.abs(A.spectral_quantise(white, SR, 1e-6, 1e3) - white).max() < 1e-5
    errs = [np.mean((A.spectral_quantise(white, SR, step, 35.0) - white) ** 2) for step in (1.0, 3.0, 6.0)]
    assert errs[0] < errs[1] < errs[2]


# ----------------------------------------------------------------------- noise


@pytest.mark.parametrize("kind", A.NOISE_KINDS)
def test_noise_snr_on_active_speech(kind):
    rng = np.random.default_rng(3)
    x, active = _bursts(rng)
    for snr in (5.0, 12.5, 30.0):
        y = A.add_noise(x, SR, snr, np.random.default_rng(4), kind)
        noise = (y - x).astype(np.float64)
        measured = 10 * np.log10(np.mean(x[active].astype(np.float64) ** 2) / np.mean(noise[active] ** 2))
        assert abs(measured - snr) < 0.5
        assert abs(A.snr_db(x, y, SR) - snr) < 0.01
        # half the clip is silence: the SNR over the whole clip would be about 3 dB lower
        whole = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
        assert whole < snr - 2.0


def test_noise_colours():
    rng = np.random.default_rng(5)
    f, pink = _psd_db(A.make_noise(4 * SR, SR, "pink", rng))
    _, white = _psd_db(A.make_noise(4 * SR, SR, "white", rng))
    sel = (f >= 100) & (f <= 7000)
    assert abs(np.polyfit(np.log2(f[sel]), pink[sel], 1)[0] + 3.0) < 0.5  # -3 dB per octave
    assert abs(np.polyfit(np.log2(f[sel]), white[sel], 1)[0]) < 0.3
    # babble-like: speech-shaped (follows the speech's long-term spectrum) and modulated in time
    speech, _ = _bursts(rng)
    babble = A.make_noise(speech.shape[0], SR, "babble", rng, like=speech)
    _, pb = _psd_db(babble)
    _, ps = _psd_db(speech)
    assert np.corrcoef(pb[sel], ps[sel])[0, 1] > 0.8
    frame_rms = lambda x: np.sqrt(np.mean(x[: len(x) // 800 * 800].reshape(-1, 800) ** 2, axis=1))  # noqa: E731
    cv = lambda x: frame_rms(x).std() / frame_rms(x).mean()  # noqa: E731
    assert cv(babble) > 2 * cv(A.make_noise(speech.shape[0], SR, "white", rng))
    for kind in A.NOISE_KINDS:
        assert np.mean(A.make_noise(8000, SR, kind, rng, like=speech[:8000]) ** 2) == pytest.approx(1.0, rel=1e-3)


# ---------------------------------------------------------------------- reverb


def test_schroeder_measures_a_known_decay():
    t = np.arange(SR) / SR
    h = np.exp(-3 * np.log(10) * t / 0.5)  # energy falls 60 dB in 0.5 s, no noise
    assert A.schroeder_rt60(h, SR) == pytest.approx(0.5, rel=0.01)


@pytest.mark.parametrize("rt60", [0.2, 0.5, 0.8])
def test_synthetic_rir_has_the_asked_rt60(rt60):
    for seed, drr in ((0, 0.0), (1, 10.0)):
        h = A.synthetic_rir(SR, rt60, np.random.default_rng(seed), drr_db=drr)
        assert A.schroeder_rt60(h, SR) == pytest.approx(rt60, rel=0.2)  # measured within about 6 %
        tail = np.sum(h[1:].astype(np.float64) ** 2)
        assert 10 * np.log10(h[0] ** 2 / tail) == pytest.approx(drr, abs=0.01)


def test_reverb_is_the_convolution_at_the_input_level():
    x, _ = _bursts(np.random.default_rng(6), n_bursts=3)
    h = A.synthetic_rir(SR, 0.4, np.random.default_rng(7))
    y = A.reverb(x, h, SR)
    direct = np.convolve(x.astype(np.float64), h.astype(np.float64))[: x.shape[0]]
    assert np.corrcoef(y, direct)[0, 1] > 0.9999
    mask = A.active_mask(x, SR)
    assert np.mean(y[mask] ** 2) == pytest.approx(np.mean(x[mask] ** 2), rel=1e-3)
    # reverberation fills the pauses: energy in the silent gaps after each burst
    assert np.mean(y[~mask] ** 2) > 1e-3 * np.mean(y[mask] ** 2)


# ------------------------------------------------------------------ eq and gain


@pytest.mark.parametrize("tilt", [-3.0, -1.5, 1.5, 3.0])
def test_eq_tilt_slope(white, tilt):
    f, out = _psd_db(A.eq_tilt(white, SR, tilt))
    _, ref = _psd_db(white)
    sel = (f >= 125) & (f <= 7000)
    slope = np.polyfit(np.log2(f[sel]), (out - ref)[sel], 1)[0]
    assert abs(slope - tilt) < 1.0  # measured within 0.01 dB/oct
    assert abs((out - ref)[np.argmin(np.abs(f - 1000))]) < 0.2  # unity at the 1 kHz pivot


def test_gain_is_exact(white):
    y = A.gain(white, 6.0)
    assert 10 * np.log10(np.sum(y.astype(np.float64) ** 2) / np.sum(white.astype(np.float64) ** 2)) == \
        pytest.approx(6.0, abs=1e-4)
    assert np.array_equal(A.gain(white, 0.0), white)


# ----------------------------------------------------------------------- chain

EVERYTHING = dict(reverb_prob=1.0, noise_prob=1.0, eq_prob=1.0, gain_prob=1.0, telephone_prob=1.0, mulaw_prob=1.0)
NOTHING = dict(reverb_prob=0.0, noise_prob=0.0, eq_prob=0.0, gain_prob=0.0, telephone_prob=0.0, lowpass_prob=0.0,
               mulaw_prob=0.0, spectral_prob=0.0)


def test_chain_is_seeded_and_ordered(white):
    aug = A.ChannelAugment(AugmentConfig(), SR)
    a, done_a = aug(white, np.random.default_rng(11))
    b, done_b = aug(white, np.random.default_rng(11))
    assert np.array_equal(a, b) and done_a == done_b
    outs = {tuple(aug(white, np.random.default_rng(s))[1]) for s in range(12)}
    assert len(outs) > 6  # different seeds draw different chains

    full = A.ChannelAugment(AugmentConfig(**EVERYTHING), SR)
    y, done = full(white, np.random.default_rng(0))
    assert [d.split()[0] for d in done] == ["reverb", "noise", "eq", "gain", "telephone", "mu-law"]
    f, p = _psd_db(y)
    assert (p[f >= 3450] - p[(f > 300) & (f < 3300)].mean()).max() < -40  # the telephone band held
    none, nothing = A.ChannelAugment(AugmentConfig(**NOTHING), SR)(white, np.random.default_rng(0))
    assert nothing == [] and np.array_equal(none, white)


def test_chain_fuses_eq_with_the_band_filter_exactly(white):
    cfg = AugmentConfig(**{**NOTHING, "eq_prob": 1.0, "eq_db_per_octave": (2.0, 2.0), "lowpass_prob": 1.0,
                           "lowpass_cutoffs_hz": (4000.0,)})
    y, done = A.ChannelAugment(cfg, SR)(white, np.random.default_rng(3))
    assert done == ["eq +2.0dB/oct", "lowpass 4kHz"]
    # one FFT pass = the two filters in turn, except within a few ms of the clip's ends, where
    # filtering in turn loses what the first filter spread past the end
    one_by_one = A.lowpass(A.eq_tilt(white, SR, 2.0), SR, 4000.0)
    assert np.abs(y - one_by_one)[300:-300].max() < 1e-5


def test_measured_rirs_from_a_folder(tmp_path, white):
    h = A.synthetic_rir(SR, 0.3, np.random.default_rng(0))
    (tmp_path / "rooms").mkdir()
    sf.write(str(tmp_path / "rooms" / "room.wav"), np.concatenate([np.zeros(50, np.float32), h]), SR)
    cfg = AugmentConfig(**{**NOTHING, "reverb_prob": 1.0, "rir_dir": str(tmp_path / "rooms")})
    aug = A.ChannelAugment(cfg, SR)
    assert len(aug.rirs) == 1 and np.allclose(aug.rirs[0][: h.shape[0]], h / np.abs(h).max(), atol=1e-4)
    y, done = aug(white, np.random.default_rng(0))
    assert done == ["reverb rir#0"] and np.allclose(y, A.reverb(white, aug.rirs[0], SR))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no audio files"):
        A.ChannelAugment(AugmentConfig(rir_dir=str(tmp_path / "empty")), SR)
    with pytest.raises(ConfigError, match="not a folder"):
        A.ChannelAugment(AugmentConfig(rir_dir=str(tmp_path / "missing")), SR)


def test_config_errors_and_overrides():
    with pytest.raises(ConfigError, match="noise_prob"):
        A.ChannelAugment(AugmentConfig(noise_prob=1.5), SR)
    with pytest.raises(ConfigError, match="lowpass_cutoffs_hz"):
        A.ChannelAugment(AugmentConfig(lowpass_cutoffs_hz=(9000.0,)), SR)
    with pytest.raises(ConfigError, match="noise_kinds"):
        A.ChannelAugment(AugmentConfig(noise_kinds=("brown",)), SR)
    cfg = apply_overrides(RunConfig(), ["train.augment=true", "augment.noise_prob=0.5", "augment.gain_db=[-3, 3]",
                                        "augment.noise_kinds=pink"])
    assert cfg.train.augment and cfg.augment.noise_prob == 0.5
    assert cfg.augment.gain_db == (-3, 3) and cfg.augment.noise_kinds == ("pink",)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown augment key 'snr'"):
        apply_overrides(RunConfig(), ["augment.snr=3"])
    # a config written before augmentation existed loads with it off and the defaults
    old = RunConfig().to_dict()
    del old["augment"], old["train"]["augment"]
    loaded = RunConfig.from_dict(old)
    assert not loaded.train.augment and loaded.augment == AugmentConfig()


# --------------------------------------------------------------------- sampler


def _sampler(augment_cfg, seed=0, n=6, **kw):
    from vcconv.data.manifest import Utterance
    from vcconv.train import WaveSegmentSampler

    rng = np.random.default_rng(20)
    waves, rows = {}, []
    for i in range(n):
        x, _ = _bursts(rng, n_bursts=3)
        waves[f"u{i}"] = np.round(x * 32767).astype(np.int16)
        rows.append(Utterance(f"u{i}", f"s{i % 2}", f"u{i}.wav"))
    return WaveSegmentSampler(waves, rows, AudioConfig(), 40, 32, ["s0", "s1"], A.ChannelAugment(augment_cfg, SR),
                              seed=seed, **kw), waves


def test_sampler_clean_target_and_augmented_inputs():
    sampler, waves = _sampler(AugmentConfig(**{**EVERYTHING, "gain_prob": 0.0}))
    # a crop's clean mel is the mel of the clean waveform crop (float16-stored, as the cache stores it)
    state = sampler.get_state()
    wave, mel = sampler.crop(2, 40)
    direct = log_mel(wave, AudioConfig()).numpy()[:, sampler.context : sampler.context + 40]
    assert np.abs(direct - mel).max() < 0.01
    assert np.abs(sampler.log_mels(wave[None])[0] - log_mel(wave, AudioConfig()).numpy()).max() < 1e-4
    sampler.set_state(state)

    clean, _ = _sampler(AugmentConfig(**NOTHING))
    b_aug, b_clean = sampler.sample(8), clean.sample(8)
    assert {k: tuple(v.shape) for k, v in b_aug.items()} == {"mel": (8, 80, 40), "mel_in": (8, 80, 40),
                                                           "ref": (8, 80, 32), "speaker": (8,)}
    assert torch.equal(b_aug["mel"], b_clean["mel"])  # same crops, the target untouched
    assert torch.equal(b_clean["mel_in"], b_clean["mel"]) and all(a == ([], []) for a in clean.last_applied)
    assert all(a and r for a, r in sampler.last_applied)
    assert (b_aug["mel_in"] - b_aug["mel"]).abs().mean(dim=(1, 2)).min() > 0.1
    assert (b_aug["ref"] - b_clean["ref"]).abs().mean(dim=(1, 2)).min() > 0.1

    # only the reference: the content input stays clean
    ref_only, _ = _sampler(AugmentConfig(**{**EVERYTHING, "content": False}))
    b = ref_only.sample(8)
    assert torch.equal(b["mel_in"], b["mel"]) and not torch.equal(b["ref"], b_clean["ref"])


def test_sampler_is_seeded_and_resumable():
    a, _ = _sampler(AugmentConfig(), seed=3, content_warp_prob=0.5, warp_prob=0.5)
    b, _ = _sampler(AugmentConfig(), seed=3, content_warp_prob=0.5, warp_prob=0.5)
    first = a.sample(6)
    assert all(torch.equal(first[k], v) for k, v in b.sample(6).items())
    state = a.get_state()
    import json

    state = json.loads(json.dumps(state))  # as the training state stores it
    nxt = a.sample(6)
    a.set_state(state)
    again = a.sample(6)
    assert all(torch.equal(nxt[k], again[k]) for k in nxt)
    assert not torch.equal(nxt["mel_in"], first["mel_in"])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tone_corpus(tmp_path_factory.mktemp("aug_tones"), valid=True)


def test_sampler_clean_mel_matches_the_feature_cache(corpus):
    from vcconv.data.features import extract
    from vcconv.data.manifest import read_manifest
    from vcconv.train import WaveSegmentSampler, load_training_waves

    rows = read_manifest(corpus, "train")
    cfg = AudioConfig()
    waves = load_training_waves(rows, cfg)
    sampler = WaveSegmentSampler(waves, rows, cfg, 24, 24, ["a", "b"], A.ChannelAugment(AugmentConfig(), SR))
    for k, r in enumerate(rows[:2]):
        cached, _ = extract(r.path, cfg)
        stored = sampler.items[k][1].astype(np.float32)
        assert stored.shape == cached.shape
        loud = cached > np.log(1e-5) + 3  # int16 rounding lifts the quietest bins off the floor
        assert loud.mean() > 0.2 and np.abs(stored - cached)[loud].max() < 0.05


# -------------------------------------------------------------------- training


def test_training_with_augmentation_runs_and_resumes(corpus, tmp_path):
    from test_train import TINY, _sets

    from vcconv.checkpoint import load_training_state
    from vcconv.cli import main

    sets = _sets(TINY + ["train.augment=true", "augment.noise_prob=0.8", "augment.telephone_prob=0.5"])
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    main(["train", "--data", str(corpus), "--out", str(straight), "--max-steps", "5", "--device", "cpu", *sets])
    main(["train", "--data", str(corpus), "--out", str(resumed), "--max-steps", "3", "--device", "cpu", *sets])
    state = load_training_state(resumed)
    assert state["step"] == 3 and state["config"]["train"]["augment"] is True
    assert state["config"]["augment"]["noise_prob"] == 0.8 and set(state["extra"]["sampler"]) == {"crop", "augment"}
    main(["train", "--data", str(corpus), "--out", str(resumed), "--max-steps", "5", "--device", "cpu", *sets])
    a, b = load_training_state(straight), load_training_state(resumed)
    assert b["step"] == 5
    assert a["extra"]["sampler"] == b["extra"]["sampler"]  # the resumed run drew the same batches
    for k, v in a["model"].items():
        assert torch.allclose(v, b["model"][k], atol=1e-5), k
