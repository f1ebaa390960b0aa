"""Experiments on the stages after the model: bench/realspeech_check.py with one step patched.

Not part of the package; reproduces the rows marked * in docs/models.md ("Where the words go").
Same arguments as realspeech_check.py; the patch is chosen by environment variables:

    LIFT_FRAC=f     cepstral lifter of the synthesis envelopes below f x the source's pitch period
                    when the F0 is given (LIFT_FIXED=n: a fixed n-sample lifter; LIFT_NOISE=1: also
                    the noise envelope)
    SM_MODE=mean | clampL   spectrum matching moves the band means only | the std ratio clamped to
                    [1/L, L]; SM_SMOOTH=k: the mean offset smoothed over k bands
    PF_ENV=b, PF_IT=n, PF_POW=p, PF_LIFT=n   given-F0 post-filter: blend b of the magnitude prior's
                    cepstral envelope, n phase iterations, sharpening p
    F0_MODE=same | meanonly | converted   --f0 transfer keeps the source's F0 unshifted | moves its
                    mean only | reads the contour from the converted mel (the one the vocoder renders,
                    so that its one backbone pass could serve both) instead of the source's, then moves it
    RENDER=world_gain | world_abs   render with WORLD instead of the neural vocoder: the source's
                    CheapTrick envelope times the converted-to-source mel gain | the converted mel's
                    pseudo-inverse as the envelope; the source's aperiodicity; its F0 moved to the target
    DIFF=1          spectrum-differential conversion: the source's own mel + (1 - source_mix) x DIFF_SCALE
                    x (decoder(content, target vector) - decoder(content, the source's own vector)),
                    so the decoder's blur cancels (Kobayashi et al. 2014); DIFF_SCALE defaults to 1
    KNN=k           k-nearest-neighbour conversion (after kNN-VC, Baas et al. 2023): each source frame's
                    log-mel is the mean of the k reference frames nearest in cosine of KNN_FEAT
                    (frontend = the content front end's features, content = the model's content code),
                    each utterance's mean feature removed first when KNN_CENTER=1; the model's decoder
                    is not used; source mix, spectrum matching and F0 as usual
    BANDMIX=lo,hi,hz  the source mix per mel band: the source's share is lo below hz and hi above
                    (a logistic step two bands wide), instead of one --source-mix for every band;
                    BANDMIX_SMOOTH=k: the source's mel in that mix keeps only its first k DCT
                    coefficients over the mel bands per frame (its envelope, without resolved harmonics)
    SHARPEN=b[,k0]  the decoder's output sharpened across bands before the source mix: its DCT
                    coefficients over the mel bands (a mel cepstrum) from k0 (default 2: not the level
                    or the tilt) on multiplied by 1 + b per frame, as in HMM-synthesis post-filters
    CLASSMATCH=K    class-wise spectrum transfer: the frames of source and reference are clustered into K
                    classes (cosine k-means of the content front end's features, each utterance's mean
                    feature removed); each source frame's log-mel is moved by the soft-weighted
                    difference of the reference's and the source's class means (shrunk towards the
                    global difference where a class has few frames, CM_SHRINK frames, default 10;
                    softmax temperature CM_TAU, default 0.1). Alone (the decoder unused) unless
                    CM_MODEL=1: then the moved source takes the source's place in the usual source mix
    TSHARP=a,w      the decoder's output sharpened in time before the source mix: mel + a x (mel - its
                    moving average over w frames), an unsharp mask against the decoder's smeared transitions
    ADAPT=n,lr[,reg]  test-time speaker adaptation: the speaker vector from the encoder is refined by n
                    Adam steps (learning rate lr) that minimise the decoder's L1 reconstruction of the
                    reference clips (standardised log-mel, from their own content code) plus reg x the
                    squared distance to the encoder's vector (default 0); ADAPT_MEAN=1 starts every
                    clip's refinement from the mean vector and refines one vector on all clips;
                    ADAPT_PERBLOCK=1: one vector per decoder block (each starts from the encoder's and
                    is held near it), so each AdaIN layer gets its own adapted scale and shift
    REF_CHANNEL=telephone  every reference clip reaches the converter through a telephone channel
                    (vcconv.data.augment.telephone: 300-3400 Hz, 8-bit mu-law at 8 kHz); the sources (the
                    check's ``*_a.wav`` halves and their ``*_a_8k.wav`` copies) are left as they are
    BANDFILL=k      for a reference whose channel owns some bands (vcconv.audio.matchable_bands), the speaker
                    vector is re-read k times from the reference's mel with those bands filled in by the
                    decoder's rendering of the reference (its content code, the current vector)
    CONTENT_ADAPT=n,lr[,in]  test-time content refinement: the source's content code is refined by n Adam
                    steps (learning rate lr) so that the decoder, with the source's own speaker vector,
                    rebuilds the source's standardised log-mel; in=1 (default) instance-normalises the
                    refined code as the encoder does (no per-channel offsets can carry the source's voice);
                    then the refined code is decoded with the target's vector as usual

    F0_MODE=same python bench/realspeech_variants.py --split valid --models-only \
        --model B=pretrained/adain-whisper.safetensors --source-mix 1 --spectrum-match 0 \
        --f0 transfer --out runs/f0m-same
"""
import os, sys, runpy, math, torch
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
from vcconv.vocoder.neural import HNFVocoder, cepstral_envelope, minimum_phase, MAX_LOG_MAG
FRAC = float(os.environ.get('LIFT_FRAC', '0'))
FIXED = int(os.environ.get('LIFT_FIXED', '0'))

def adaptive_lifter(log_env, src_f0, sr, frac):
    """(B,F,T) log-mag, src F0 (B,T) Hz -> liftered: keep quefrency < frac * sr / f0 (per frame)."""
    n_fft = 2 * (log_env.shape[1] - 1)
    c = torch.fft.irfft(log_env.transpose(1, 2), n=n_fft, dim=-1)  # (B,T,n)
    f = src_f0.clone().float()
    for b in range(f.shape[0]):
        v = f[b] > 0
        fill = f[b][v].median() if v.any() else torch.tensor(150.0)
        f[b] = torch.where(v, f[b], fill)
    cut = (frac * sr / f.clamp(min=50.0))[..., None]  # (B,T,1)
    q = torch.arange(n_fft, dtype=c.dtype)
    q = torch.minimum(q, n_fft - q)[None, None]
    keep = (q < cut).to(c.dtype)
    return torch.fft.rfft(c * keep, dim=-1).real.transpose(1, 2)

def synthesize(self, mel, f0=None, seed=0, feats=None, f0_ratio=1.0, voicing_from_mel=False):
    mel = mel.float()
    feats = self.features(mel) if feats is None else feats
    with torch.no_grad():
        predicted = self.decode_f0(*self.f0_logits(feats))
    shifted = f0 is not None or f0_ratio != 1.0
    if f0 is None:
        f0 = predicted
    elif voicing_from_mel:
        f0 = torch.where(predicted > 0, f0.to(predicted), torch.zeros_like(predicted))
    f0 = f0.to(mel.device).float() * f0_ratio
    env = self.env_head(feats)
    prior = self.prior_log_magnitude(mel)
    log_h, log_n = env.split(self.n_freq, dim=1)
    log_harm_env = torch.clamp(log_h + prior, max=MAX_LOG_MAG)
    log_noise = torch.clamp(log_n + prior, max=MAX_LOG_MAG)
    if shifted and (FRAC > 0 or FIXED > 0):
        if FIXED:
            log_harm_env = cepstral_envelope(log_harm_env, FIXED)
            if os.environ.get('LIFT_NOISE'): log_noise = cepstral_envelope(log_noise, FIXED)
        else:
            log_harm_env = adaptive_lifter(log_harm_env, predicted, self.audio.sample_rate, FRAC)
            if os.environ.get('LIFT_NOISE'): log_noise = adaptive_lifter(log_noise, predicted, self.audio.sample_rate, FRAC)
    nz = torch.exp(log_noise)
    noise = self.noise_spectrum(tuple(nz.shape), mel.device, seed)
    h = torch.exp(log_harm_env)
    harm = self.stft(self.harmonic_source(f0))
    return self.istft(h * harm + nz * noise), f0

HNFVocoder.synthesize = synthesize
from vcconv import convert as _conv
SM = os.environ.get('SM_MODE', '')
def match_spectrum(self, mel, reference):
    mean, std = _conv.band_statistics(mel)
    ref_mean, ref_std = reference
    if SM == 'mean':
        ratio = torch.ones_like(std)
    elif SM.startswith('clamp'):
        lim = float(SM[5:] or 1.25)
        ratio = (ref_std / std).clamp(1 / lim, lim)
    else:
        ratio = ref_std / std
    offset = ref_mean - mean
    if os.environ.get('SM_SMOOTH'):
        k = int(os.environ['SM_SMOOTH'])
        pad = torch.nn.functional.pad(offset.T[None], (k // 2, k // 2), mode='replicate')
        offset = torch.nn.functional.avg_pool1d(pad, k, 1)[0].T
    matched = (mel - mean) * ratio + mean + offset
    return mel + self.spectrum_match * (matched - mel)
if SM or os.environ.get('SM_SMOOTH'):  # (until 2026-12-08 always: the same formula as the library's then)
    _conv.Converter.match_spectrum = match_spectrum
PF_ENV = float(os.environ.get('PF_ENV', '0'))
PF_IT = int(os.environ.get('PF_IT', '0'))
PF_POW = float(os.environ.get('PF_POW', '0'))
_orig_pf = HNFVocoder.apply_postfilter
def apply_postfilter(self, wav, mel=None, envelope_only=False, f0=None):
    """The library's post-filter with the given-F0 settings of PF_* (on a copy of the config)."""
    if envelope_only and (PF_ENV or PF_IT or PF_POW) and not self.training:
        import copy
        self.cfg = copy.copy(self.cfg)
        self.cfg.prior_envelope_blend = PF_ENV
        self.cfg.envelope_lifter = int(os.environ.get('PF_LIFT', '24'))
        self.cfg.postfilter_iters_given_f0 = PF_IT
        self.cfg.postfilter_given_f0 = PF_POW or self.cfg.postfilter_given_f0
    return _orig_pf(self, wav, mel, envelope_only, f0)
HNFVocoder.apply_postfilter = apply_postfilter
F0M = os.environ.get('F0_MODE', '')
_LAST_CONVERTED = [None]
_orig_match = _conv.Converter.match_spectrum
def _match_and_keep(self, converted, stats):
    out = _orig_match(self, converted, stats)
    _LAST_CONVERTED[0] = out
    return out
if F0M == 'converted':
    _conv.Converter.match_spectrum = _match_and_keep
_orig_transfer = _conv.Converter.transfer_f0
def transfer_f0(self, source_mel, target_f0):
    import numpy as np
    from vcconv.pitch import interpolate_unvoiced, log_f0_stats, shift_f0_to_target
    if not F0M:
        return _orig_transfer(self, source_mel, target_f0)
    if F0M == 'converted':  # the package's own transfer, reading the converted mel
        return _orig_transfer(self, _LAST_CONVERTED[0], target_f0)
    src_f0 = self.vocoder.predict_f0(source_mel[None])[0].cpu().numpy().astype(np.float64)
    if F0M == 'same':
        moved = src_f0
    elif F0M == 'meanonly':
        moved = shift_f0_to_target(src_f0, log_f0_stats(src_f0), log_f0_stats(target_f0), match_spread=False)
    return torch.from_numpy(interpolate_unvoiced(moved)).float().to(source_mel.device)[None]
_conv.Converter.transfer_f0 = transfer_f0
RENDER = os.environ.get('RENDER', '')
def _convert_world(self, source, references, speaker):
    import numpy as np
    from vcconv.audio import load_audio, log_mel, mel_filterbank, normalize_loudness
    from vcconv.dsp import world_vc
    from vcconv.pitch import log_f0_stats, shift_f0_to_target
    speaker = self.speaker_vector(references)
    target_f0 = self.reference_f0(references)
    wav = normalize_loudness(load_audio(source, self.audio.sample_rate), self.audio.target_dbfs)
    mel = log_mel(torch.from_numpy(wav).to(self.device), self.audio)
    features = self.content_features(wav, mel.shape[-1])
    speaker = self.apply_strength(speaker, wav)
    converted = self.mix_source(self.convert_mel(mel, speaker, features), mel)
    if self.spectrum_match > 0:
        converted = self.match_spectrum(converted, self.reference_spectrum(references))
    hop_ms = 1000.0 * self.audio.hop_length / self.audio.sample_rate
    feats = world_vc.analyse(wav, self.audio.sample_rate, frame_period_ms=hop_ms, fft_size=self.audio.n_fft)
    T = min(feats.f0.shape[0], converted.shape[-1])
    fb = mel_filterbank(self.audio, 'cpu')  # (n_mels, F)
    if RENDER == 'world_gain':
        log_gain = (2 * (converted[:, :T] - mel[:, :T])).float().numpy()  # log power ratio per band
        fbn = fb.numpy()
        centre = (fbn * np.arange(fbn.shape[1])).sum(1) / fbn.sum(1)  # band centres in FFT bins
        bins = np.arange(fbn.shape[1])
        lin_gain = np.stack([np.interp(bins, centre, log_gain[:, t]) for t in range(T)])  # (T, F)
        sp = feats.sp[:T] * np.exp(lin_gain)
    else:
        lin = torch.linalg.pinv(fb) @ torch.exp(converted[:, :T].float())
        sp = (lin.clamp(min=1e-5) ** 2).numpy().T.astype(np.float64)
    f0 = shift_f0_to_target(feats.f0[:T], log_f0_stats(feats.f0), log_f0_stats(target_f0))
    out = world_vc.synthesize(world_vc.WorldFeatures(f0, np.ascontiguousarray(sp), feats.ap[:T]),
                              self.audio.sample_rate, n_samples=len(wav), frame_period_ms=hop_ms)
    out = normalize_loudness(out, self.audio.target_dbfs)
    return _conv.ConversionResult(out, self.audio.sample_rate, {})
if RENDER:
    _conv.Converter._convert = _convert_world
def _finish(self, converted, mel, references, target_f0):
    """The shipped stages after the model: spectrum matching, F0 transfer, vocoder, loudness."""
    from vcconv.audio import normalize_loudness
    if self.spectrum_match > 0:
        converted = self.match_spectrum(converted, self.reference_spectrum(references))
    f0 = None if target_f0 is None else self.transfer_f0(mel, target_f0)
    out = normalize_loudness(self.vocode(converted, f0), self.audio.target_dbfs)
    return _conv.ConversionResult(out, self.audio.sample_rate, {})
DIFF = os.environ.get('DIFF', '')
DIFF_SCALE = float(os.environ.get('DIFF_SCALE', '1'))
def _convert_diff(self, source, references, speaker):
    from vcconv.audio import load_audio, log_mel, normalize_loudness
    speaker = self.speaker_vector(references)
    target_f0 = self.reference_f0(references) if self.f0_mode == 'transfer' else None
    wav = normalize_loudness(load_audio(source, self.audio.sample_rate), self.audio.target_dbfs)
    mel = log_mel(torch.from_numpy(wav).to(self.device), self.audio)
    features = self.content_features(wav, mel.shape[-1])
    s_self = self._speaker_of(wav[: _conv.SOURCE_VOICE_SECONDS * self.audio.sample_rate])
    speaker = self.apply_strength(speaker, wav)
    delta = self.convert_mel(mel, speaker, features) - self.convert_mel(mel, s_self, features)
    converted = mel + (1.0 - self.source_mix) * DIFF_SCALE * delta
    return _finish(self, converted, mel, references, target_f0)
if DIFF:
    _conv.Converter._convert = _convert_diff
KNN = int(os.environ.get('KNN', '0'))
KNN_FEAT = os.environ.get('KNN_FEAT', 'frontend')
KNN_CENTER = os.environ.get('KNN_CENTER', '')
def _knn_features(self, wav, mel):
    feats = self.content_features(wav, mel.shape[-1])
    if KNN_FEAT == 'content':
        feats = self._content(mel, feats)[0]
    feats = feats.float()
    if KNN_CENTER:
        feats = feats - feats.mean(dim=1, keepdim=True)
    return torch.nn.functional.normalize(feats, dim=0)
def _knn_bank(self, references):
    from vcconv.audio import load_audio, log_mel, preprocess
    key = tuple(str(r) for r in references)
    bank = getattr(self, '_knn_banks', {})
    self._knn_banks = bank
    if key not in bank:
        feats, mels = [], []
        for ref in references:
            wav = preprocess(load_audio(ref, self.audio.sample_rate), self.audio, trim=True)
            mel = log_mel(torch.from_numpy(wav).to(self.device), self.audio)
            feats.append(_knn_features(self, wav, mel))
            mels.append(mel)
        bank[key] = (torch.cat(feats, dim=1), torch.cat(mels, dim=1))
    return bank[key]
@torch.no_grad()
def _convert_knn(self, source, references, speaker):
    from vcconv.audio import load_audio, log_mel, normalize_loudness
    target_f0 = self.reference_f0(references) if self.f0_mode == 'transfer' else None
    wav = normalize_loudness(load_audio(source, self.audio.sample_rate), self.audio.target_dbfs)
    mel = log_mel(torch.from_numpy(wav).to(self.device), self.audio)
    ref_feats, ref_mels = _knn_bank(self, references)
    sim = _knn_features(self, wav, mel).T @ ref_feats  # (T, N)
    idx = sim.topk(min(KNN, sim.shape[1]), dim=1).indices  # (T, k)
    converted = self.mix_source(ref_mels[:, idx].mean(dim=-1), mel)
    return _finish(self, converted, mel, references, target_f0)
if KNN:
    _conv.Converter._convert = _convert_knn
BANDMIX = os.environ.get('BANDMIX', '')
_library_mix = _conv.Converter.mix_source
def _mix_bands(self, converted, source_mel):
    """The library's two-band mix (Converter.source_shares) with BANDMIX's shares and split."""
    lo, hi, hz = (float(x) for x in BANDMIX.split(','))
    self.source_mix, self.source_mix_high, self.source_mix_split_hz = lo, hi, hz
    k = int(os.environ.get('BANDMIX_SMOOTH', '0'))
    if k:
        n = self.audio.n_mels
        i = torch.arange(n, dtype=converted.dtype)
        dct = torch.cos(math.pi / n * (i[None, :] + 0.5) * i[:, None]) * math.sqrt(2.0 / n)
        dct[0] /= math.sqrt(2.0)  # orthonormal DCT-II, (n, n)
        keep = dct[:k].to(converted.device)
        source_mel = keep.T @ (keep @ source_mel)
    return _library_mix(self, converted, source_mel)
if BANDMIX:
    _conv.Converter.mix_source = _mix_bands
SHARPEN = os.environ.get('SHARPEN', '')
TSHARP = os.environ.get('TSHARP', '')
_library_convert_mel = _conv.Converter.convert_mel
def _dct_matrix(n, dtype):
    i = torch.arange(n, dtype=dtype)
    dct = torch.cos(math.pi / n * (i[None, :] + 0.5) * i[:, None]) * math.sqrt(2.0 / n)
    dct[0] /= math.sqrt(2.0)  # orthonormal DCT-II, (n, n)
    return dct
def _sharpened_convert_mel(self, source_mel, speaker, features=None):
    out = _library_convert_mel(self, source_mel, speaker, features)
    if SHARPEN:
        parts = [float(x) for x in SHARPEN.split(',')]
        beta, k0 = parts[0], int(parts[1]) if len(parts) > 1 else 2
        dct = _dct_matrix(out.shape[0], out.dtype).to(out.device)
        gain = torch.ones(out.shape[0], dtype=out.dtype, device=out.device)
        gain[k0:] = 1.0 + beta
        out = dct.T @ (gain[:, None] * (dct @ out))
    if TSHARP:
        a, w = (float(x) for x in TSHARP.split(','))
        w = int(w) | 1
        smooth = torch.nn.functional.avg_pool1d(out[None], w, stride=1, padding=w // 2, count_include_pad=False)[0]
        out = out + a * (out - smooth)
    return out
if SHARPEN or TSHARP:
    _conv.Converter.convert_mel = _sharpened_convert_mel
CLASSMATCH = int(os.environ.get('CLASSMATCH', '0'))
CM_TAU = float(os.environ.get('CM_TAU', '0.1'))
CM_SHRINK = float(os.environ.get('CM_SHRINK', '10'))
def _centred_features(self, wav, mel):
    feats = self.content_features(wav, mel.shape[-1]).float()
    return torch.nn.functional.normalize(feats - feats.mean(dim=1, keepdim=True), dim=0)  # (D, T)
def _kmeans(x, k, iters=25):
    """Cosine k-means of unit rows ``(N, D)`` -> centroids ``(k, D)``."""
    g = torch.Generator().manual_seed(0)
    cent = x[torch.randperm(x.shape[0], generator=g)[:k]].clone()
    for _ in range(iters):
        assign = (x @ cent.T).argmax(dim=1)
        for c in range(cent.shape[0]):
            members = x[assign == c]
            if len(members):
                cent[c] = torch.nn.functional.normalize(members.mean(dim=0), dim=0)
    return cent
def _class_matched(self, wav, mel, references):
    from vcconv.audio import load_audio, preprocess
    ref_wav = preprocess(load_audio(references[0], self.audio.sample_rate), self.audio, trim=True)
    ref_mel = self.reference_mel(references[0])  # the same trimmed clip's log-mel, cached
    fs, fr = _centred_features(self, wav, mel), _centred_features(self, ref_wav, ref_mel)
    ms, mr = _conv.speech_frames(mel), _conv.speech_frames(ref_mel)
    cent = _kmeans(torch.cat([fs[:, ms].T, fr[:, mr].T]), CLASSMATCH)
    ws = torch.softmax(fs.T @ cent.T / CM_TAU, dim=1)  # (T_s, K)
    wr = torch.softmax(fr[:, mr].T @ cent.T / CM_TAU, dim=1)
    wss = ws[ms]
    mass_s, mass_r = wss.sum(0), wr.sum(0)
    mu_s = mel[:, ms] @ wss / mass_s.clamp(min=1e-6)
    mu_r = ref_mel[:, mr] @ wr / mass_r.clamp(min=1e-6)
    glob = (ref_mel[:, mr].mean(dim=1) - mel[:, ms].mean(dim=1))[:, None]
    m = torch.minimum(mass_s, mass_r)
    lam = m / (m + CM_SHRINK)
    offsets = lam * (mu_r - mu_s) + (1 - lam) * glob  # (n_mels, K)
    return mel + offsets @ ws.T
@torch.no_grad()
def _convert_classmatch(self, source, references, speaker):
    from vcconv.audio import load_audio, log_mel, normalize_loudness
    target_f0 = self.reference_f0(references) if self.f0_mode == 'transfer' else None
    wav = normalize_loudness(load_audio(source, self.audio.sample_rate), self.audio.target_dbfs)
    mel = log_mel(torch.from_numpy(wav).to(self.device), self.audio)
    moved = _class_matched(self, wav, mel, references)
    if os.environ.get('CM_MODEL'):
        speaker = self.apply_strength(self.speaker_vector(references), wav)
        converted = self.mix_source(self.convert_mel(mel, speaker, self.content_features(wav, mel.shape[-1])), moved)
    else:
        converted = moved
    return _finish(self, converted, mel, references, target_f0)
if CLASSMATCH:
    _conv.Converter._convert = _convert_classmatch
ADAPT = os.environ.get('ADAPT', '')
PERBLOCK = bool(os.environ.get('ADAPT_PERBLOCK'))
def _decode_per_block(decoder, content, vectors):
    """The decoder with vector ``vectors[i]`` ``(1, S)`` feeding block i."""
    h = torch.nn.functional.leaky_relu(decoder.inp(content), 0.2)
    for block, v in zip(decoder.blocks, vectors):
        h = block(h, v)
    return decoder.out(h)
def _adapted_speaker_vector(self, references):
    """The encoder's mean vector ``(1, S)`` refined on the reference clips (ADAPT above): the
    library's :func:`vcconv.adaptation.refine_speaker`, or one vector per decoder block."""
    from vcconv.adaptation import refine_speaker
    parts = [float(x) for x in ADAPT.split(',')]
    steps, lr, reg = int(parts[0]), parts[1], parts[2] if len(parts) > 2 else 0.0
    with torch.no_grad():
        start = _library_speaker_vector(self, references)
        clips = [self._reference_clip(ref) for ref in references]  # (content, mel, voice bands)
    if not PERBLOCK:
        return refine_speaker(self.model, start, clips, steps, lr, reg)
    n = len(self.model.decoder.blocks)
    vector = start.repeat(n, 1).clone().requires_grad_(True)
    opt = torch.optim.Adam([vector], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            rec = [_decode_per_block(self.model.decoder, c, vector.split(1)) for c, _, _ in clips]
            loss = sum(torch.nn.functional.l1_loss(r, self.model.norm(m)) for r, (_, m, _) in zip(rec, clips)) / len(clips)
            loss = loss + reg * (vector - start).pow(2).sum() / n
            vector.grad, = torch.autograd.grad(loss, [vector])
            opt.step()
    self._per_block = vector.detach()
    return self._per_block[:1]
_library_convert_mel_pb = _conv.Converter.convert_mel
@torch.no_grad()
def _per_block_convert_mel(self, source_mel, speaker, features=None):
    vectors = self._per_block.split(1)
    content = self._content(source_mel, features)
    return self.model.norm.inverse(_decode_per_block(self.model.decoder, content, vectors))[0]
if ADAPT and PERBLOCK:
    _conv.Converter.convert_mel = _per_block_convert_mel
_library_speaker_vector = _conv.Converter.speaker_vector
if ADAPT:
    _conv.Converter.speaker_vector = _adapted_speaker_vector
CONTENT_ADAPT = os.environ.get('CONTENT_ADAPT', '')
def _refined_content_convert_mel(self, source_mel, speaker, features=None):
    from vcconv.models.layers import instance_norm
    parts = CONTENT_ADAPT.split(',')
    steps, lr = int(parts[0]), float(parts[1])
    use_in = len(parts) < 3 or parts[2] != '0'
    with torch.no_grad():
        start = self._content(source_mel, features)
        own = self.model.speaker(source_mel[None])
        target = self.model.norm(source_mel[None])
    code = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([code], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            c = instance_norm(code) if use_in else code
            loss = torch.nn.functional.l1_loss(self.model.decoder(c, own), target)
            code.grad, = torch.autograd.grad(loss, [code])
            opt.step()
    with torch.no_grad():
        c = instance_norm(code) if use_in else code
        return self.model.decode(c, speaker)[0]
if CONTENT_ADAPT:
    _conv.Converter.convert_mel = _refined_content_convert_mel
REF_CHANNEL = os.environ.get('REF_CHANNEL', '')
_library_load_audio = _conv.load_audio
def _load_reference_through_channel(path, sr=None, *args, **kwargs):
    wav = _library_load_audio(path, sr, *args, **kwargs)
    name = os.path.basename(str(path))
    if name.endswith('_a.wav') or name.endswith('_a_8k.wav'):
        return wav
    from vcconv.data.augment import telephone
    return telephone(wav, sr or 16000)
if REF_CHANNEL == 'telephone':
    _conv.load_audio = _load_reference_through_channel
BANDFILL = int(os.environ.get('BANDFILL', '0'))
_library_speaker_vector_bf = _conv.Converter.speaker_vector
@torch.no_grad()
def _band_filled_speaker_vector(self, references):
    vectors = []
    for ref in references:
        content, mel, bands = self._reference_clip(ref)
        vector = self.model.speaker(mel)
        if not bool(bands.all()):
            for _ in range(BANDFILL):
                filled = torch.where(bands[None, :, None], mel, self.model.decode(content, vector))
                vector = self.model.speaker(filled)
        vectors.append(vector)
    return torch.stack(vectors).mean(dim=0)
if BANDFILL:
    _conv.Converter.speaker_vector = _band_filled_speaker_vector
sys.argv = ['realspeech_check.py'] + sys.argv[1:]
runpy.run_path(os.path.join(BENCH, 'realspeech_check.py'), run_name='__main__')
