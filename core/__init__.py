"""Soundstage DSP core: pure numpy/torch, no Qt.

Audio I/O, STFT, parametric-stereo (PS) analysis/quantization/decoding, the decorrelator,
the classical Decorr upmix, metrics, and (later) the PS prediction models.
"""

SAMPLE_RATE = 44100
