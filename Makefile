# classcap: make help lists the targets.

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# opussrc: link the libopus that scripts/libopus.sh builds from its release
# source (build/opus/linux-<arch>/) rather than the older one mediadevices
# bundles; plain go build and go test work without it.
GOTAGS  := opussrc
GOBUILD := $(GO) build -trimpath -tags $(GOTAGS) -ldflags '$(LDFLAGS)'

# Cross compilers (Debian: gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu,
# gcc-arm-linux-gnueabihf, g++-arm-linux-gnueabihf). cgo is needed for
# libopus and for the bundled static openh264 library of mediadevices.
ARM64_ENV := CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++
ARMV7_ENV := CGO_ENABLED=1 GOOS=linux GOARCH=arm GOARM=7 CC=arm-linux-gnueabihf-gcc CXX=arm-linux-gnueabihf-g++

# Fails listing every Go file that gofmt would change.
GOFMT_CHECK = unformatted=$$(find . -name '*.go' -not -path './.git/*' -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi

.DEFAULT_GOAL := help
.PHONY: help deps opus build test test-arm run bench lint build-arm64 build-armv7 deb clean

help: ## list the targets
	@echo "usage: make TARGET"
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

deps: ## install the missing Debian packages for build and test (scripts/install-deps.sh)
	scripts/install-deps.sh

opus: ## build libopus for this machine from its release source into build/opus/ (once)
	@scripts/libopus.sh >/dev/null

build: opus ## build bin/classcapd, bin/classcapctl and bin/classcap-hub
	$(GOBUILD) -o bin/ ./cmd/...

test: deps opus ## go vet, gofmt check, every test with the race detector, then test-arm
	$(GO) vet -tags $(GOTAGS) ./...
	@$(GOFMT_CHECK)
	$(GO) test -tags $(GOTAGS) -race -count=1 -timeout 25m ./...
	@$(MAKE) --no-print-directory test-arm

# Tests that also run as arm64 and armv7 binaries under qemu-user, where 32-bit
# problems show (struct layouts and ioctl numbers, 64-bit atomics, int overflow):
# the device packages and the stream and store packages, built without cgo, -short,
# no -race (about 2 minutes for both); and, with cgo, the Opus encoder on arm64. Skipped there: tests that send device ioctls
# to /dev/null, which qemu-user answers with ENOSYS instead of the kernel's ENOTTY.
ARM_TEST_PKGS  := ./device/v4l2 ./device/alsa ./capture/stream ./capture/durable ./provisioning/config
ARM_TEST_PKGS7 := $(ARM_TEST_PKGS) ./capture/segment ./capture/catalog
ARM_TEST_SKIP  := TestProbeErrors|TestCameraErrors|TestNewErrors

test-arm: ## run the device, stream and store tests as arm64 and armv7 binaries under qemu-user
	scripts/install-deps.sh cross
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) test -short -count=1 -timeout 10m \
		-exec 'qemu-aarch64 -L /usr/aarch64-linux-gnu' -skip '$(ARM_TEST_SKIP)' $(ARM_TEST_PKGS)
	@# The Pi's Opus encoder: libopus built for arm64 with NEON, linked through cgo.
	scripts/libopus.sh arm64 >/dev/null
	$(ARM64_ENV) $(GO) test -tags $(GOTAGS) -short -count=1 -timeout 10m \
		-exec 'qemu-aarch64 -L /usr/aarch64-linux-gnu' ./capture/audio
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) test -short -count=1 -timeout 10m \
		-exec 'qemu-arm -L /usr/arm-linux-gnueabihf' -skip '$(ARM_TEST_SKIP)' $(ARM_TEST_PKGS7)

run: deps build ## run the box daemon (simulated hardware) and the hub on this machine
	scripts/run-local.sh

bench: deps build ## print the benchmark figures (one "bench ..." line each)
	scripts/bench.sh

lint: opus ## gofmt -l, go vet, and staticcheck when it is installed
	@$(GOFMT_CHECK)
	$(GO) vet -tags $(GOTAGS) ./...
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck ./...; \
	else echo "staticcheck not installed: skipped (go install honnef.co/go/tools/cmd/staticcheck@latest)"; fi

build-arm64: ## cross-build the binaries for 64-bit Raspberry Pi OS into bin/linux-arm64/
	scripts/install-deps.sh cross
	scripts/libopus.sh arm64 >/dev/null
	$(ARM64_ENV) $(GOBUILD) -o bin/linux-arm64/ ./cmd/...

build-armv7: ## cross-build the binaries for 32-bit Raspberry Pi OS (armv7) into bin/linux-armv7/
	scripts/install-deps.sh cross
	scripts/libopus.sh armv7 >/dev/null
	$(ARMV7_ENV) $(GOBUILD) -o bin/linux-armv7/ ./cmd/...

deb: opus ## build the Debian packages (box and hub) for amd64, arm64 and armhf into bin/deb/
	scripts/install-deps.sh cross
	scripts/libopus.sh arm64 >/dev/null
	scripts/libopus.sh armv7 >/dev/null
	CGO_ENABLED=1 $(GOBUILD) -o bin/linux-amd64/ ./cmd/...
	$(ARM64_ENV) $(GOBUILD) -o bin/linux-arm64/ ./cmd/...
	$(ARMV7_ENV) $(GOBUILD) -o bin/linux-armv7/ ./cmd/...
	scripts/deb.sh amd64 bin/linux-amd64 bin/deb $(VERSION)
	scripts/deb.sh arm64 bin/linux-arm64 bin/deb $(VERSION)
	scripts/deb.sh armhf bin/linux-armv7 bin/deb $(VERSION)

clean: ## remove bin/ and build/ (run/, the local lessons of make run, is kept)
	rm -rf bin/ build/
