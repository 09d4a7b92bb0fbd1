# v6matrix: the two set-up commands of the README are `make demo` and `make test`.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

SHELL := /bin/bash

.PHONY: all build deps test test-short fuzz demo bench clean

all: build

deps:
	@scripts/deps.sh

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o v6matrix ./cmd/v6matrix

# The whole test suite (lab and network-namespace tests need root; they skip without),
# then a short run of each fuzz target (make fuzz).
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz

# Every parser of untrusted input, FUZZTIME each (seed corpora in each package's
# testdata/fuzz; longer runs: make fuzz FUZZTIME=10m). See docs/TESTING.md.
FUZZTIME ?= 5s
FUZZ_TARGETS := \
	FuzzClassify:./internal/addrclass FuzzParseTable:./internal/addrclass \
	FuzzReader:./internal/domains FuzzNormalize:./internal/domains FuzzParseOptOut:./internal/domains \
	FuzzHost:./internal/resolve FuzzEvaluate:./internal/probe/ntpprobe FuzzParse:./internal/probe/path \
	FuzzLookup:./internal/geoip FuzzRequest:./internal/web

# scripts/fuzz.sh tells Go 1.26's fuzz coordinator race at the -fuzztime deadline
# (golang/go#75804: "context deadline exceeded", no failing input) from a finding.
fuzz:
	@GO='$(GO)' scripts/fuzz.sh $(FUZZTIME) $(FUZZ_TARGETS)

# The README's main job: lab up, crawl it with the default settings, export the records.
demo: deps build
	./v6matrix demo --out demo-out

bench: build
	./v6matrix bench --domains 100000

clean:
	rm -f v6matrix
