# TxLog. `make demo` and `make test` are the two commands a newcomer needs; both install missing
# system packages first (Debian: liblz4-dev, zlib1g-dev, pkg-config).

SWIFT ?= swift
APT_PACKAGES := liblz4-dev zlib1g-dev pkg-config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build demo test test-long bench clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

demo: deps
	$(SWIFT) build -c release --product txlog
	./.build/release/txlog demo demo-log

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Opt-in long runs: many more crash iterations.
test-long: deps
	$(SWIFT) build --build-tests
	TXLOG_LONG_TESTS=1 $(SWIFT) test --skip-build

bench: deps
	$(SWIFT) build -c release --product txlog
	./.build/release/txlog bench all --dir .build/bench-log

clean:
	rm -rf .build demo-log
