"""Evaluation of voice conversion: speaker similarity, intelligibility, spectral and pitch distances.

Submodules (heavy packages are imported inside functions, never at import time):

* :mod:`vcconv.eval.speaker`    -- resemblyzer embeddings, cosine, centroids, closed-set identification;
* :mod:`vcconv.eval.asr`        -- offline pocketsphinx transcription, WER / CER by edit distance;
* :mod:`vcconv.eval.signal`     -- pYIN F0, log-F0 statistics, mel-cepstral distortion with DTW, V/UV error;
* :mod:`vcconv.eval.conversion` -- :func:`evaluate_pairs` over (source, target, output) triples + summary;
* :mod:`vcconv.eval.baselines`  -- baselines that a meaningless output must *fail* (noise, copy of the source).

The evaluation packages live in the ``eval`` extra: ``pip install 'vcconv[eval]'``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from vcconv.errors import VcconvError

EVAL_EXTRA_HINT = "install the eval extra: pip install 'vcconv[eval]'"


def require(module: str, what: str | None = None) -> ModuleType:
    """Import ``module`` or raise a :class:`VcconvError` that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        need = what or module
        raise VcconvError(f"{need} is not installed ({err.name or module}); {EVAL_EXTRA_HINT}") from None
