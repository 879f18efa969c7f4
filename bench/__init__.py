"""Benchmarks: our collector side by side with reference tools, reported as CPU ratios.

Run one with `python -m bench NAME`; each ends with a line `RESULT name=value ratio=ours/reference`.
The machines are shared and noisy, so every figure is CPU time (not wall time) and, where a
benchmark repeats, the median of its repetitions.
"""
