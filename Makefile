# resnetd: ResNet image classifiers over HTTP.
#
#   make            build/libresnet.{a,so}, build/resnet, build/resnetd
#   make test       every test (unit, parity, end-to-end); ends "N passed, N failed"
#   make asan       the same build and tests with -fsanitize=address,undefined in build-asan/
#   make bench      engine and image pipeline benchmarks
#   make run        install what is missing, build, fetch the default model, serve it
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean

# ---- switches ----
DEBUG    ?= 0
SANITIZE ?= 0
BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=

PKGS := libcjson libpng libjpeg
SERVER_PKGS := libmicrohttpd libsystemd
CC ?= cc

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g -fvect-cost-model=dynamic
ifeq ($(DEBUG),1)
CFLAGS  := -O0 -g3
endif
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -pthread $(WARN) $(CFLAGS) -Icore \
              $(shell pkg-config --cflags $(PKGS))
LIBS := $(shell pkg-config --libs $(PKGS)) -lm -pthread -ldl

CORE_SRC   := $(wildcard core/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
TOOL_SRC   := $(wildcard tools/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
TOOL_OBJ   := $(TOOL_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

TARGETS := $(BUILD)/libresnet.a $(BUILD)/libresnet.so $(BUILD)/resnet
ifneq ($(wildcard server/main.c),)
TARGETS += $(BUILD)/resnetd
endif

.PHONY: all test asan bench run model install uninstall clean deps
all: $(TARGETS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(if $(filter server/% tests/%,$<),$(shell pkg-config --cflags $(SERVER_PKGS) cmocka)) -MMD -MP -c $< -o $@

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

bench: all
	@BUILD=$(BUILD) bench/run.sh

deps:
	@scripts/install-deps.sh

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
