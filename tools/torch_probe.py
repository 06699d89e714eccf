#!/usr/bin/python3
"""torch_probe.py -- which BLAS and which kernels PyTorch runs the benchmark step on.

Runs the products the step is made of (fp32 linear and conv1d; under CPU autocast, bf16 linear,
conv1d and batched matmul) once, then reports what actually ran:
  - the BLAS library whose sgemm_ libtorch calls (after an fp32 product; see sgemm_library),
    and for OpenBLAS its core type (openblas_get_corename) and build (openblas_get_config);
  - ATen's CPU capability (torch.__config__.show());
  - the oneDNN implementations of the fp32 and the bf16 products (ONEDNN_VERBOSE, in children).
Exit status 3 when the fp32 products run on the reference (netlib) BLAS: its sgemm is about ten
times slower than an optimised BLAS, so a speed ratio against it says nothing about PyTorch.

    unset OPENBLAS_CORETYPE; /usr/bin/python3 tools/torch_probe.py [--threads N]
"""
import ctypes
import os
import re
import subprocess
import sys


def products(bf16):
    import torch
    import torch.nn as nn
    torch.manual_seed(0)
    x = torch.randn(800, 256)
    lin = nn.Linear(256, 256)
    conv = nn.Conv1d(256, 256, 3, stride=2)
    wav = torch.randn(8, 256, 400)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        y = lin(x)
        conv(wav)
        torch.matmul(y.view(8, 100, 256), y.view(8, 100, 256).transpose(1, 2))


def sgemm_library():
    """The file whose sgemm_ PyTorch's fp32 products call: looked up from libtorch_cpu's handle
    (dlsym searches the library and then its dependencies in the order its own relocations
    were resolved), then found in /proc/self/maps by its address."""
    maps = [line.split() for line in open('/proc/self/maps')]
    torch_lib = next((m[-1] for m in maps if len(m) >= 6 and 'libtorch_cpu' in os.path.basename(m[-1])), None)
    try:
        addr = ctypes.cast(ctypes.CDLL(torch_lib).sgemm_, ctypes.c_void_p).value
    except (AttributeError, OSError, TypeError):
        return None
    for m in maps:
        lo, hi = (int(v, 16) for v in m[0].split('-'))
        if lo <= addr < hi and len(m) >= 6:
            return m[-1]
    return None


def main():
    if '--child' in sys.argv:
        products(sys.argv[-1] == 'bf16')
        return 0
    threads = sys.argv[sys.argv.index('--threads') + 1] if '--threads' in sys.argv else None
    import torch
    if threads:
        torch.set_num_threads(int(threads))
    products(False)
    lib_path = sgemm_library()
    cfg = torch.__config__.show()
    cap = re.search(r'CPU capability usage: (\S+)', cfg)
    print('PyTorch %s, ATen CPU kernels: %s, threads %d' % (torch.__version__, cap.group(1) if cap else '?',
                                                          torch.get_num_threads()))
    ref = False
    if not lib_path:
        print('BLAS: no sgemm_ in the process (torch built with MKL or without a BLAS?)')
    else:
        real = os.path.realpath(lib_path)
        line = 'BLAS (sgemm_ from): %s' % real
        lib = ctypes.CDLL(lib_path)
        if hasattr(lib, 'openblas_get_corename'):
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            line += ' (OpenBLAS, core %s; %s)' % (lib.openblas_get_corename().decode(),
                                                  lib.openblas_get_config().decode().strip())
        elif re.search(r'libblas\.so', real) and not re.search(r'openblas|mkl|blis|atlas', real):
            line += ' (the reference netlib BLAS)'
            ref = True
        print(line)
    if os.environ.get('OPENBLAS_CORETYPE'):
        print('OPENBLAS_CORETYPE=%s is set: OpenBLAS runs that core type\'s kernels, not its best'
              % os.environ['OPENBLAS_CORETYPE'])
    env = dict(os.environ, ONEDNN_VERBOSE='1', DNNL_VERBOSE='1')
    for prec in ('fp32', 'bf16'):
        r = subprocess.run([sys.executable, os.path.abspath(__file__), '--child', prec], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        isa = re.search(r'onednn_verbose,info,cpu,isa:(.*)', r.stdout)
        impls = {}
        for m in re.finditer(r'onednn_verbose,exec,cpu,(matmul|convolution|inner_product),([^,]+),', r.stdout):
            impls.setdefault(m.group(1), set()).add(m.group(2))
        what = 'fp32' if prec == 'fp32' else 'bf16 (autocast)'
        if impls:
            print('%s: oneDNN (ISA %s) runs %s; the rest is ATen + BLAS' % (
                what, isa.group(1).strip() if isa else '?',
                '; '.join('%s %s' % (k, '/'.join(sorted(v))) for k, v in sorted(impls.items()))))
        else:
            print('%s: no oneDNN kernel ran: ATen kernels and the BLAS' % what)
    if ref:
        print('refusing: PyTorch\'s fp32 products run on the reference BLAS; install an optimised one '
              '(apt-get install libopenblas0-pthread) and run again')
        return 3
    return 0


if __name__ == '__main__':
    sys.exit(main())
