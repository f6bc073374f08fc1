# nexfield: make demo runs the whole path on this machine; make test runs the tests.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -buildid= -X main.version=$(VERSION)
GOFLAGS_BUILD := -trimpath -buildvcs=false -ldflags '$(LDFLAGS)'
export CGO_ENABLED ?= 0

.PHONY: all build demo test test-short vet fmt-check bench model clean \
	amd64 arm64 armv7 armv6 release repro deb test-arm64 test-armv7 test-system

all: build

build:
	$(GO) build $(GOFLAGS_BUILD) -o bin/nexfield ./cmd/nexfield

demo: build
	./bin/nexfield demo

vet:
	$(GO) vet ./...
	$(GO) vet -tags field ./cmd/...

# Static analysis, pinned: staticcheck on both builds, and deadcode over
# everything the binary and the tests reach. String methods are kept for
# fmt and slog, which deadcode cannot see call them.
STATICCHECK_VERSION ?= v0.8.2
DEADCODE_VERSION    ?= v0.52.0
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
.PHONY: lint
lint:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GO) install golang.org/x/tools/cmd/deadcode@$(DEADCODE_VERSION)
	$(GOBIN_DIR)/staticcheck ./...
	$(GOBIN_DIR)/staticcheck -tags field ./cmd/...
	@out=$$($(GOBIN_DIR)/deadcode -test ./... | grep -v 'unreachable func: [A-Za-z]*\.String$$'); \
	if [ -n "$$out" ]; then echo "deadcode: unreachable code:"; echo "$$out"; exit 1; fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: fmt-check vet
	$(GO) test -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Field platform: release binaries, reproducibility and emulated tests
# (cross/README.md); .deb packages, first boot and systemd checks
# (packaging/README.md).
# The release paths (the four targets, release, repro, deb) build the field
# binary (-tags field); build, demo and test use the development binary.
.PHONY: test-armv6 test-deb test-image size
amd64 arm64 armv7 armv6:
	VERSION=$(VERSION) GO=$(GO) cross/build.sh $@

release:
	VERSION=$(VERSION) GO=$(GO) cross/build.sh amd64 arm64 armv7 armv6

repro:
	GO=$(GO) cross/repro.sh

# Field binary vs development binary: arm64 sizes, agent and peer memory.
size:
	GO=$(GO) cross/size.sh

test-arm64 test-armv7 test-armv6:
	GO=$(GO) cross/test-qemu.sh $(@:test-%=%)

deb:
	VERSION=$(VERSION) GO=$(GO) packaging/deb.sh

test-deb: deb
	packaging/test-deb.sh

test-image: deb
	packaging/test-image.sh

test-system: deb
	packaging/test-system.sh
	packaging/test-system-peer.sh
	packaging/test-system-agent.sh

# Rebuild the embedded sentiment model from inference/train/data (deterministic; prints the accuracy report).
model:
	$(GO) run ./cmd/nexfield train --out inference/model/default.onnx

clean:
	rm -rf bin dist
