# Switchboard: `make run` starts one node on the embedded broker; `make test`
# installs what the tests need and runs every test with the race detector
# (and the socket-level packages once more without it).
GO ?= go
PKGS := ./...

.PHONY: run test test-deps test-js lint vet fuzz bench build web

run:
	$(GO) run ./cmd/switchboard

build:
	$(GO) build -o bin/switchboard ./cmd/switchboard

## test: lint, vet, then every test (real redis-server, real clients) under
## -race; then, without it, the packages whose sockets go through
## internal/rawsock, whose raw system calls race builds leave out.
RAWSOCK_PKGS := ./internal/rawsock ./server ./broker ./e2e
test: test-deps lint vet test-js
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(GO) test -count=1 -timeout 10m $(RAWSOCK_PKGS)

## web: copy the JavaScript client into the page's assets (web/static/lib),
## which the binary embeds; web/web_test.go fails when the copy is stale.
web:
	rm -f web/static/lib/*.js
	cp clients/js/src/*.js web/static/lib/

## test-js: the JavaScript client's tests (Node >= 20, no npm install needed).
test-js:
	cd clients/js && npm test

test-deps:
	@./scripts/test-deps.sh

vet:
	$(GO) vet $(PKGS)

## lint: fail if any Go file is not gofmt-formatted.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## fuzz: run the envelope decoder fuzzer for a while (FUZZTIME=30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./protocol/

## bench: the load generator; prints throughput, latency, CPU and memory per
## connection. BENCHFLAGS passes flags, e.g. BENCHFLAGS='-compare-history'.
BENCHFLAGS ?=
bench:
	ulimit -Sn $$(ulimit -Hn) && $(GO) run ./cmd/switchboard-bench $(BENCHFLAGS)
