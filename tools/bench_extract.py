#!/usr/bin/python3
"""bench_extract.py -- wav2vec 2.0 `base` feature extraction, ssl_vgs against torchaudio (make bench).

Both extract every transformer layer of one 10 s utterance in eval mode without gradients:
ssl_vgs with `./train --bench-extract --config base` (sv_extract_features, median of 5 after a
warm-up), torchaudio with wav2vec2_base().extract_features (same count). Rounds interleave the
two, one thread count at a time, each measurement in a fresh process. PyTorch gets its best
setting: OPENBLAS_NUM_THREADS 1 and equal to the thread count are both timed and the faster one
kept (Debian's python3-torch calls whatever libblas.so.3 is installed; the libraries it loaded
are printed); OPENBLAS_CORETYPE is removed from its environment (it forces slower kernels here).
Prints x real time (audio seconds per wall second) and the ratio ssl_vgs / torchaudio.

Usage: /usr/bin/python3 tools/bench_extract.py [--rounds 3] [--threads 1,2]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torch_worker(threads, reps):
    import torch
    from torchaudio.models import wav2vec2_base
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = wav2vec2_base().eval()
    x = torch.randn(1, 160000)
    x = (x - x.mean()) / x.std()
    times, cpu = [], []
    with torch.no_grad():
        for i in range(reps + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            feats, _ = model.extract_features(x)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if i:
                times.append(dt)
                cpu.append(dc)
    libs = set()
    with open('/proc/self/maps') as f:
        for line in f:
            p = line.split()[-1]
            if re.search(r'(blas|mkl|dnnl|blis)', os.path.basename(p)):
                libs.add(os.path.basename(p))
    print(json.dumps(dict(median=statistics.median(times), cpu=statistics.median(cpu), threads=torch.get_num_threads(), blas=sorted(libs),
                          mkldnn=torch.backends.mkldnn.is_available(), layers=len(feats))))


def run_torch(threads, blas_threads, reps):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(threads))
    env.pop('OPENBLAS_CORETYPE', None)
    r = subprocess.run([sys.executable, __file__, '--worker', str(threads), '--reps', str(reps)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        raise SystemExit('torch worker failed: ' + r.stderr[-500:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_ssl(threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    r = subprocess.run(['./train', '--bench-extract', '--config', 'base', '--threads', str(threads)], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    m = re.search(r'median of \d+: ([0-9.]+) s, .*, ([0-9.]+) CPU s', r.stdout)
    if r.returncode or not m:
        raise SystemExit('./train --bench-extract failed: ' + r.stdout[-500:])
    return float(m.group(1)), float(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--threads', default='1,2')
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--worker', type=int)
    a = ap.parse_args()
    if a.worker:
        return torch_worker(a.worker, a.reps)
    try:
        import torch  # noqa: F401
        import torchaudio  # noqa: F401
    except ImportError as e:
        print('bench_extract: SKIP (%s; install python3-torch python3-torchaudio libopenblas0-pthread)' % e)
        return 0
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')
    print('wav2vec 2.0 base feature extraction, one 10 s utterance, all 12 layers, eval mode, no gradients')
    print('machine: %s, %d cores, load average %s' % (cpu, os.cpu_count(), ' '.join(open('/proc/loadavg').read().split()[:3])))
    res = {}
    info = None
    for rnd in range(a.rounds):
        for t in [int(x) for x in a.threads.split(',')]:
            s, sc = run_ssl(t)
            best = None
            for bt in sorted({1, t}):
                w = run_torch(t, bt, a.reps)
                info = w
                if best is None or w['median'] < best[0]:
                    best = (w['median'], bt, w['cpu'])
            res.setdefault(t, []).append((s, best[0], best[1], sc, best[2]))
            print('  round %d, %d thread%s: ssl_vgs %.3f s (%.3f CPU s), torchaudio %.3f s (%.3f CPU s; OpenBLAS threads %d)'
                  % (rnd + 1, t, 's' if t > 1 else '', s, sc, best[0], best[2], best[1]))
    print('torchaudio: torch %s, BLAS %s, mkldnn %s' % (__import__('torch').__version__, ', '.join(info['blas']) or '?', info['mkldnn']))
    print('%-8s %16s %16s %8s %14s' % ('threads', 'ssl_vgs x RT', 'torchaudio x RT', 'ratio', 'CPU-time ratio'))
    for t, v in res.items():
        s = statistics.median(x[0] for x in v)
        p = statistics.median(x[1] for x in v)
        cr = statistics.median(x[4] / x[3] for x in v)
        print('%-8d %16.1f %16.1f %7.2fx %13.2fx' % (t, 10.0 / s, 10.0 / p, p / s, cr))
    print('(x RT = seconds of audio per wall second; ratio = torchaudio time / ssl_vgs time, medians over rounds;\n'
          ' the CPU-time ratio is the one a busy machine distorts least, for 1 thread)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
