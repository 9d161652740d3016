"""Soundstage DSP core: pure numpy/torch, no Qt.

Audio I/O, STFT, parametric-stereo (PS) analysis/quantization/decoding, the decorrelator,
the classical Decorr upmix, metrics, and (later) the PS prediction models.
"""

SAMPLE_RATE = 44100
N_FFT = 4096      # STFT frame (core.stft)
HOP = 1024        # STFT hop (75 % overlap)
