"""Benchmark: carrier extraction vs the Cramer-Rao bound, and speed.

Run from the project root: ``python benchmarks/carrier_crlb.py [--windows 1000] [--json]``.

For C/N0 = 30, 40, 50 dB-Hz a unit tone in circular white noise (generated here with numpy,
independently of ``synth``) is cut into 1-s windows at fs = 1 kHz; the ratio
std(frequency error) / sqrt(CRLB), CRLB = 6 fs^2 / ((2 pi)^2 SNR N (N^2 - 1)) with
SNR = (C/N0)/fs, is reported for each method (target <= 1.2 for ``ml``), with the bias and
the calibration of the reported sigma. Speed: samples per second of ``extract_carrier`` on
10 min at 10 kHz through ``synth.receiver`` (45 dB-Hz, tcxo oscillator), and the time to
generate 1 day of oscillator noise at 10 Hz.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.carrier import extract_carrier  # noqa: E402
from synth.oscillator import oscillator  # noqa: E402
from synth.receiver import iq_samples  # noqa: E402


def crlb_ratio(cn0_dbhz, windows, method, fs=1000.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(fs)
    t = np.arange(n * windows) / fs
    f0 = 123.456789
    snr = 10 ** (cn0_dbhz / 10) / fs
    z = np.exp(1j * (2 * np.pi * f0 * t + 0.3))
    z += np.sqrt(0.5 / snr) * (rng.standard_normal(t.size) + 1j * rng.standard_normal(t.size))
    ds = xr.Dataset({"i": ("time", z.real), "q": ("time", z.imag)}, coords={"time": t},
                    attrs={"sample_rate_hz": fs})
    t0 = time.perf_counter()
    out = extract_carrier(ds, 1.0, method=method)
    dt = time.perf_counter() - t0
    err = out.frequency_hz.values - f0
    bound = np.sqrt(6 * fs**2 / ((2 * np.pi) ** 2 * snr * n * (n**2 - 1)))
    return {
        "method": method, "cn0_dbhz": cn0_dbhz, "windows": windows,
        "std_over_crlb": float(np.std(err) / bound),
        "bias_over_crlb": float(np.mean(err) / bound),
        "reported_sigma_over_crlb": float(np.median(out.frequency_sigma_hz) / bound),
        "samples_per_s": float(t.size / dt),
    }


def speed_case(seconds=600.0, fs=10_000.0):
    rng = np.random.default_rng(1)
    tq = np.arange(0.0, seconds + 1.0, 1.0)
    dop = 2000.0 - 3.0 * tq + 50 * np.sin(2 * np.pi * tq / 300)
    t0 = time.perf_counter()
    osc = oscillator(seconds + 1.0, 0.1, preset="tcxo", rng=rng)
    iq = iq_samples(tq, dop, fs, rng=rng, cn0_dbhz=45.0, rx_oscillator=osc,
                    t_stop_s=seconds, keep_truth=False)
    t_synth = time.perf_counter() - t0
    t0 = time.perf_counter()
    extract_carrier(iq, 1.0, predicted=(tq, dop), search_halfwidth_hz=50.0)
    t_extract = time.perf_counter() - t0
    t0 = time.perf_counter()
    oscillator(86400.0, 0.1, preset="tcxo", rng=rng)
    t_osc = time.perf_counter() - t0
    return {"iq_seconds": seconds, "fs_hz": fs, "synth_s": t_synth, "extract_s": t_extract,
            "extract_samples_per_s": seconds * fs / t_extract,
            "oscillator_1day_10hz_s": t_osc}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, default=1000)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    rows = [crlb_ratio(c, args.windows, m) for m in ("ml", "fft") for c in (30.0, 40.0, 50.0)]
    speed = speed_case()
    if args.json:
        print(json.dumps({"crlb": rows, "speed": speed}, indent=1))
        return 0
    print(f"{'method':6s} {'C/N0':>5s} {'std/CRLB':>9s} {'bias/CRLB':>10s} {'sig/CRLB':>9s} "
          f"{'Msamp/s':>8s}")
    for r in rows:
        print(f"{r['method']:6s} {r['cn0_dbhz']:5.0f} {r['std_over_crlb']:9.3f} "
              f"{r['bias_over_crlb']:10.3f} {r['reported_sigma_over_crlb']:9.3f} "
              f"{r['samples_per_s'] / 1e6:8.2f}")
    print(f"(ml std/CRLB 95 % sampling spread with {args.windows} windows: "
          f"+-{1.96 / np.sqrt(2 * args.windows):.3f}; target <= 1.2)")
    print(f"synth 10 min at 10 kHz: {speed['synth_s']:.2f} s; extraction "
          f"{speed['extract_s']:.2f} s ({speed['extract_samples_per_s'] / 1e6:.2f} Msamp/s); "
          f"oscillator 1 day at 10 Hz: {speed['oscillator_1day_10hz_s']:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
