#!/usr/bin/env python3
"""The MFCC reference values of test.c (test_mfcc): HuBERT's first-iteration features,
torchaudio.compliance.kaldi.mfcc(use_energy=False) + compute_deltas twice
(fairseq examples/hubert/simple_kmeans/dump_mfcc_feature.py), of the test signal
sv_t_mfcc_signal, computed in float64.

    /usr/bin/python3 tools/mfcc_reference.py          # Debian: apt-get install python3-torchaudio

Prints the rows test.c embeds (10 ms frames 0, 10, 46 = 20 ms frames 0, 5, 23), then, with
--all, every 10 ms frame (one per line, 39 values)."""
import math
import sys

import torch
import torchaudio


def signal(n=8000):
    x = []
    for i in range(n):
        t = i / 16000.0
        env = 0.5 + 0.5 * math.sin(2 * math.pi * 3.0 * t)
        v = env * (0.4 * math.sin(2 * math.pi * (200.0 * t + 1500.0 * t * t))
                   + 0.2 * math.sin(2 * math.pi * 2300.0 * t + 0.5))
        v += 0.01 * (((i * 1103515245 + 12345) % 65536) / 32768.0 - 1.0)
        x.append(v)
    return torch.tensor(x, dtype=torch.float32).double().view(1, -1)  # float32 samples, as test.c


def hubert_mfcc(w):
    m = torchaudio.compliance.kaldi.mfcc(waveform=w, sample_frequency=16000, use_energy=False)
    m = m.transpose(0, 1)
    d = torchaudio.functional.compute_deltas(m)
    dd = torchaudio.functional.compute_deltas(d)
    return torch.cat([m, d, dd], dim=0).transpose(0, 1).contiguous()


def main():
    f = hubert_mfcc(signal())
    print("# torch %s, torchaudio %s: %d frames x %d" % (torch.__version__, torchaudio.__version__, f.shape[0], f.shape[1]))
    rows = range(f.shape[0]) if "--all" in sys.argv else (0, 10, 46)
    for r in rows:
        print("# 10 ms frame %d" % r)
        print(", ".join("%.7g" % v for v in f[r].tolist()))


if __name__ == "__main__":
    main()
