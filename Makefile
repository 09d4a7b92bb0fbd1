# v6matrix: the two set-up commands of the README are `make demo` and `make test`.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build deps test test-short fuzz demo bench clean

all: build

deps:
	@scripts/deps.sh

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o v6matrix ./cmd/v6matrix

# The whole test suite (lab and network-namespace tests need root; they skip without),
# then a short run of each fuzz target.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime 10s ./internal/addrclass
	$(GO) test -run '^$$' -fuzz '^FuzzParseTable$$' -fuzztime 10s ./internal/addrclass
	$(GO) test -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime 10s ./internal/web

# The README's main job: lab up, crawl it with the default settings, export the records.
demo: deps build
	./v6matrix demo --out demo-out

bench: build
	./v6matrix bench --domains 100000

clean:
	rm -f v6matrix
