"""The shipped PS models' file names, one home for the registry's catalog and the modules that load them."""
from __future__ import annotations

__all__ = ["MTM_FILE", "MTM_DETAIL_FILE", "AR_FILE", "REG_FILE", "AR_MAX_SECONDS"]

MTM_FILE = "ps-mtm.pt"
MTM_DETAIL_FILE = "ps-mtm-detail.json"    # its detail calibration (core.detail), when shipped
AR_FILE = "ps-ar.pt"
REG_FILE = "ps-reg.pt"
AR_MAX_SECONDS = 30.0                     # PS-AR's longest input
