"""The torch-backed PS models' entries in the registry, declared without importing their code.

Listing the models, their files and checksums (a project's record, the prediction cache's key, ``soundstage
render`` of a project whose predictions are kept) must not import torch: it costs a second or two on a
loaded machine. Each entry's loader imports its module on first use (:mod:`core.lazy`); the file names are
in :mod:`core.models.files`.
"""
from __future__ import annotations

from .base import file_available, register_model
from .files import AR_FILE, AR_MAX_SECONDS, MTM_DETAIL_FILE, MTM_FILE, REG_FILE
from core import lazy
ar = lazy.module("core.models.ar")
mtm = lazy.module("core.models.mtm")
reg = lazy.module("core.models.reg")


register_model("ps-mtm", label="PS-MTM",
               description="Masked token modelling transformer (MaskGIT sampling with classifier-free "
                           "guidance): a new plausible stereo image for every seed.",
               loader=lambda d: mtm.MTMModel.load(d), available=lambda d: file_available(d, MTM_FILE),
               files=(MTM_FILE, MTM_DETAIL_FILE))
register_model("ps-ar", label="PS-AR",
               description=f"Autoregressive transformer, band by band and frame by frame: slow, for "
                           f"excerpts of at most {AR_MAX_SECONDS:.0f} s.",
               loader=lambda d: ar.ARModel.load(d), available=lambda d: file_available(d, AR_FILE),
               files=(AR_FILE,))
register_model("ps-reg", label="PS-Reg",
               description="Regression baseline (same network, mean-squared error): deterministic; "
                           "predicts width well but keeps panning near the centre.",
               loader=lambda d: reg.RegModel.load(d), available=lambda d: file_available(d, REG_FILE),
               files=(REG_FILE,))
