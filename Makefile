# ssl_vgs - build the drivers and run the tests.
#   make            build train, eval, demo and the test binary
#   make test       build and run the tests (closing line "N passed, N failed")
#   make demo       run the whole study on the built-in corpus (outputs in demo_out/)
#   make bench      speed benchmark (./train --bench; then base feature extraction against
#                   torchaudio when python3-torchaudio is installed)
#   make check-torch  wav2vec 2.0 against torchaudio both ways, <= 1e-4 per layer (needs
#                   python3-torch and python3-torchaudio; prints SKIP without them)
#   make sanitize   the tests under AddressSanitizer + UndefinedBehaviorSanitizer (quick set)
#   make test-data  data_prep.sh on generated fixtures of each upstream layout
#   make fuzz       libFuzzer harnesses for the file and config parsers (needs clang)
#   make test-cross the tests on aarch64 (NEON), s390x (big-endian), i686 (32-bit) under
#                   qemu-user, and for Windows (mingw-w64, run under wine when installed)
# Options: NO_OMP=1 (no OpenMP), SIMD=native|avx2|scalar, CC=clang, OPT=-O2
# Default flags never include the fast-math options: they break erf/exp (GELU, softmax) numerics.

CC   ?= cc
CXX  ?= c++
OPT  ?= -O3
SIMD ?= native
WARN  = -Wall -Wextra -pedantic

ifeq ($(SIMD),scalar)
  ARCH = -DSV_NO_SIMD
else ifeq ($(SIMD),avx2)
  ARCH = -mavx2 -mfma
else
  ARCH = -march=native
endif

ifeq ($(NO_OMP),1)
  OMPFLAG =
  OMPSTATE = off
else
  OMPFLAG = -fopenmp
  OMPSTATE = on
endif

CFLAGS ?= -std=c99 $(OPT) $(WARN) $(ARCH) $(OMPFLAG)
LDLIBS  = -lm
BUILD   = build

$(info ssl_vgs build: SIMD=$(SIMD) ($(ARCH)), OpenMP $(OMPSTATE), CC=$(CC))

.PHONY: all test test-data demo demo-build bench sanitize fuzz clean compile-checks check-torch test-cross
all: train eval demo-build test_sv

train: train.c ssl_vgs.h
	$(CC) $(CFLAGS) -o $@ train.c $(LDLIBS)
eval: eval.c ssl_vgs.h
	$(CC) $(CFLAGS) -o $@ eval.c $(LDLIBS)
# `demo` is the name of both the program and the make target that runs it, so it is built
# through a phony rule (a few seconds of compiling)
demo-build:
	$(CC) $(CFLAGS) -o demo demo.c $(LDLIBS)
test_sv: test.c ssl_vgs.h
	$(CC) $(CFLAGS) -o $@ test.c $(LDLIBS)

# The header must compile cleanly as C99 (-Werror -pedantic) at every optimisation level (some
# warnings only appear at -O0 or -O2), without the built-in corpus, as C++, and in static mode in
# two translation units of one program; the drivers at -O0 too; and the README's example program.
compile-checks: $(BUILD)/c99.ok $(BUILD)/cxx.ok $(BUILD)/static2.ok $(BUILD)/readme.ok
$(BUILD)/c99.ok: ssl_vgs.h train.c eval.c demo.c
	@mkdir -p $(BUILD)
	@printf '#define SSL_VGS_IMPLEMENTATION\n#include "../ssl_vgs.h"\nint main(void){return sv_get_threads() < 1;}\n' > $(BUILD)/c99.c
	for o in -O0 -O1 -O2 -O3; do $(CC) -std=c99 $$o $(WARN) -Werror $(ARCH) -o $(BUILD)/c99 $(BUILD)/c99.c $(LDLIBS) || exit 1; done
	$(CC) -std=c99 -O1 $(WARN) -Werror $(ARCH) -fopenmp -o $(BUILD)/c99omp $(BUILD)/c99.c $(LDLIBS)
	$(CC) -std=c99 -O1 $(WARN) -Werror $(ARCH) -DSSL_VGS_NO_CORPUS -o $(BUILD)/c99nc $(BUILD)/c99.c $(LDLIBS)
	for f in train eval demo; do $(CC) -std=c99 -O0 $(WARN) -Werror $(ARCH) -o $(BUILD)/$$f-O0 $$f.c $(LDLIBS) || exit 1; done
	@touch $@
$(BUILD)/cxx.ok: ssl_vgs.h
	@mkdir -p $(BUILD)
	@printf '#define SSL_VGS_IMPLEMENTATION\n#include "../ssl_vgs.h"\nint main(){return sv_get_threads() < 1;}\n' > $(BUILD)/cxx.cpp
	$(CXX) -O1 -Wall -Wextra -Werror $(ARCH) -o $(BUILD)/cxx $(BUILD)/cxx.cpp $(LDLIBS)
	@touch $@
$(BUILD)/readme.ok: README.md ssl_vgs.h
	@mkdir -p $(BUILD)
	awk '/^```c$$/ { f = 1; next } /^```$$/ { if (f) exit } f' README.md > $(BUILD)/readme_example.c
	@test -s $(BUILD)/readme_example.c || { echo "README.md has no C example"; exit 1; }
	$(CC) -std=c99 -O1 $(WARN) -Werror $(ARCH) -I. -o $(BUILD)/readme_example $(BUILD)/readme_example.c $(LDLIBS)
	@touch $@
$(BUILD)/static2.ok: ssl_vgs.h
	@mkdir -p $(BUILD)
	@printf '#define SSL_VGS_STATIC\n#define SSL_VGS_IMPLEMENTATION\n#include "../ssl_vgs.h"\nint tu1(void){return sv_get_threads();}\n' > $(BUILD)/tu1.c
	@printf '#define SSL_VGS_STATIC\n#define SSL_VGS_IMPLEMENTATION\n#include "../ssl_vgs.h"\nint tu1(void);\nint main(void){return tu1() + sv_get_threads() < 2;}\n' > $(BUILD)/tu2.c
	$(CC) -std=c99 -O1 $(WARN) -Werror -Wno-unused-function $(ARCH) -o $(BUILD)/static2 $(BUILD)/tu1.c $(BUILD)/tu2.c $(LDLIBS)
	@touch $@

test: test_sv compile-checks train eval demo-build
	./test_sv
	bash tools/test_train.sh
	bash tools/test_report.sh
	bash tools/test_drivers.sh

# data_prep.sh importers on generated fixtures (needs sox, flac, python3; tts also espeak-ng)
test-data: train
	bash tools/test_data_prep.sh

demo: demo-build train eval
	rm -rf demo_out
	./demo --out demo_out

# Debian's python3-torch runs under the system interpreter, whatever python3 is first on PATH
PYTHON_TORCH ?= /usr/bin/python3

bench: train
	OMP_PROC_BIND=true ./train --bench
	$(PYTHON_TORCH) tools/bench_extract.py

check-torch: train eval
	$(PYTHON_TORCH) tools/check_torchaudio.py

sanitize:
	@mkdir -p $(BUILD)
	$(CC) -std=c99 -O1 -g $(WARN) $(ARCH) -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
	    -o $(BUILD)/test_asan test.c $(LDLIBS)
	SV_TEST_QUICK=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/test_asan

# Other CPUs (tools/test_cross.sh): Debian's cross compilers build the header (C99 -Werror), the
# drivers and test.c for aarch64, s390x, i686 and x86_64-w64-mingw32, and test.c's SV_TEST_CROSS
# subset runs under qemu-user (wine for Windows). The subset, minutes per target under emulation:
# every SIMD kernel against its scalar path (aarch64: NEON; Windows: AVX2) and every op's
# finite-difference gradient check, with small shapes; a whole-model gradient check (every 8th
# parameter tensor) on the SIMD builds; every parser with its malformed inputs; the size_t overflow checks (real
# 4 GB cases on i686); and WAV (PCM and float), NPY and checkpoint files written on one host and
# read on another: x86-64's files must be byte-identical to each target's and load there to the
# same bits, and x86-64 then reads each target's (s390x: big-endian both ways). Left to make test
# (whole-model or minutes-long groups): presets, training, eval, corpus_speed, recycle_model,
# cnn_recompute_model. Needs gcc-aarch64-linux-gnu gcc-s390x-linux-gnu gcc-i686-linux-gnu
# qemu-user gcc-mingw-w64-x86-64 (and wine64 to run the Windows build); a missing tool skips its
# target with a line saying so. CROSS_TARGETS="aarch64 s390x" runs some of them.
test-cross: test_sv
	bash tools/test_cross.sh

# libFuzzer on the WAV, NPY, manifest, .item and safetensors parsers, FUZZ_SECONDS each (needs clang + libFuzzer)
FUZZ_SECONDS ?= 30
fuzz:
	sh tools/fuzz/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf train eval demo test_sv $(BUILD)
