# lgrpc — gRPC for Lua with a compact C core.
#   make            build the C core for Lua 5.4   (build/lua5.4/lgrpc/core.so)
#   make LUA=luajit build it for LuaJIT 2.1         (build/luajit/lgrpc/core.so)
#   make deps       install missing Debian packages (no-op when all are present)
#   make check      deps, both builds, every suite, the sanitizer pass; ends "N passed, M failed"
#   make demo       deps, build, run something real from examples/
#   make bench      benchmarks beside the reference implementations
LUA ?= lua5.4
CC ?= cc
OPT ?= -O2

ifeq ($(LUA),luajit)
  LUA_INC := $(shell pkg-config --cflags luajit)
  BUILD := build/luajit
else ifeq ($(LUA),asan)
  LUA_INC := $(shell pkg-config --cflags lua5.4)
  BUILD := build/asan
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else
  LUA_INC := $(shell pkg-config --cflags lua5.4)
  BUILD := build/lua5.4
endif

CFLAGS_ALL := $(OPT) -fPIC -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter $(LUA_INC) $(CFLAGS)
LIBS := -lnghttp2 -lssl -lcrypto -lz
CORE_SRC := $(sort $(wildcard core/*.c))
CORE_HDR := $(wildcard core/*.h)
CORE_OBJ := $(patsubst core/%.c,$(BUILD)/obj/%.o,$(CORE_SRC))

.PHONY: all deps check demo bench clean rock rock-install
all: $(BUILD)/lgrpc/core.so

$(BUILD)/obj/%.o: core/%.c $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/lgrpc/core.so: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) -shared -o $@ $(CORE_OBJ) $(LIBS) $(LDFLAGS)

deps:
	@sh tools/deps.sh

check: deps
	@$(MAKE) --no-print-directory LUA=lua5.4
	@$(MAKE) --no-print-directory LUA=luajit
	@$(MAKE) --no-print-directory LUA=asan
	@sh tools/check.sh

demo: deps all
	@sh tools/demo.sh

bench: deps all
	@sh tools/deps.sh bench
	@$(MAKE) --no-print-directory LUA=luajit
	@sh bench/run.sh

clean:
	rm -rf build

# luarocks (lgrpc-scm-1.rockspec, build.type "make") builds with `make rock` and installs with
# `make rock-install`, passing its own Lua headers and install directories.
ROCK_BUILD = build/rock-$(notdir $(LUA_INCDIR))
rock:
	@$(MAKE) --no-print-directory BUILD=$(ROCK_BUILD) LUA_INC=-I$(LUA_INCDIR) $(ROCK_BUILD)/lgrpc/core.so

rock-install:
	install -d $(INST_LIBDIR)/lgrpc $(INST_LUADIR)
	install -m 755 $(ROCK_BUILD)/lgrpc/core.so $(INST_LIBDIR)/lgrpc/core.so
	cd lua && find lgrpc -name '*.lua' -exec install -D -m 644 {} $(INST_LUADIR)/{} \;
