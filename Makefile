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

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: fmt-check vet
	$(GO) test -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin dist
