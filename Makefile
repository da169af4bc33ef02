# zhisou — make targets. Tools (buf, protoc plugins) install into ./bin.
export PATH := $(CURDIR)/bin:$(PATH)

GO        ?= go
BUF       := bin/buf
STORE     ?= zhisou-data
ADDR      ?= 127.0.0.1:7700

.PHONY: all check build dist test test-short lint vet generate check-generate breaking fuzz fuzz-ci bench eval run tools clean

all: check

check: lint test

# The binary the README calls, ./bin/zhisou; everything else compiled as a check.
build:
	$(GO) build ./...
	$(GO) build -buildvcs=auto -o bin/zhisou ./cmd/zhisou

# Static binaries for linux/amd64 and linux/arm64 (no cgo: copy one file to a
# customer's machine), with their SHA-256 sums, into ./dist.
dist:
	mkdir -p dist
	for arch in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -buildvcs=auto -trimpath -ldflags='-s -w' -o dist/zhisou-linux-$$arch ./cmd/zhisou || exit 1; \
	done
	cd dist && sha256sum zhisou-linux-* > SHA256SUMS

# The README's test command. The cmrc2018 quality check runs without the race
# detector (it is slow under it and tests no concurrency).
test:
	$(GO) test -race ./...
	$(GO) test -count=1 -run 'TestEvalCMRC2018' ./internal/eval/

test-short:
	$(GO) test -short ./...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

lint: vet tools
	$(BUF) lint
	$(BUF) format -d --exit-code

generate: tools
	$(BUF) generate

check-generate: generate
	git diff --exit-code -- proto/

breaking: tools
	$(BUF) breaking --against '.git#branch=main'

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzAnalyze -fuzztime=20s ./index/analysis/
	$(GO) test -run='^$$' -fuzz=FuzzTokensWithLexicon -fuzztime=20s ./index/analysis/
	$(GO) test -run='^$$' -fuzz=FuzzBuild -fuzztime=20s ./ingest/
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=20s ./ingest/
	$(GO) test -run='^$$' -fuzz=FuzzHTML -fuzztime=20s ./ingest/
	$(GO) test -run='^$$' -fuzz=FuzzTranscript -fuzztime=20s ./ingest/
	$(GO) test -run='^$$' -fuzz=FuzzDocx -fuzztime=20s ./ingest/
	$(GO) test -run='^$$' -fuzz=FuzzParseCSV -fuzztime=20s ./ingest/
	$(GO) test -run='^$$' -fuzz=FuzzPptx -fuzztime=20s ./ingest/
	$(GO) test -run='^$$' -fuzz=FuzzXlsx -fuzztime=20s ./ingest/
	$(GO) test -run='^$$' -fuzz=FuzzPDF -fuzztime=20s ./ingest/
	$(GO) test -run='^$$' -fuzz=FuzzSearch -fuzztime=20s ./retrieve/
	$(GO) test -run='^$$' -fuzz=FuzzHighlights -fuzztime=20s ./retrieve/
	$(GO) test -run='^$$' -fuzz=FuzzParseIDs -fuzztime=20s ./rerank/

# Every ingest parser's fuzzer, briefly, for CI (go test takes one -fuzz
# target per run). New inputs are not minimised at length. The budgets are
# counts, not durations: with a duration, Go 1.26's fuzz coordinator can
# report its own deadline as a failure ("context deadline exceeded", no
# failing input; go.dev/issue/75804, fixed in Go 1.27), as it once did here
# on FuzzParseCSV.
INGEST_FUZZERS := FuzzDecode FuzzBuild FuzzHTML FuzzTranscript FuzzParseCSV FuzzDocx FuzzPptx FuzzXlsx FuzzPDF
fuzz-ci:
	@for f in $(INGEST_FUZZERS); do \
		echo "$$f"; \
		$(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=3000x -fuzzminimizetime=200x ./ingest/ || exit 1; \
	done

# Speed, side by side. The Go benchmarks (query analysis, BM25 pruned and
# exhaustive, the whole in-process search; cmrc2018 when CMRC exists) with the
# pruned/exhaustive ratio; then zhisou eval against stock bleve in the same run
# (ratio column) on cmrc2018, testdata and, when LONGSET names a folder built by
# testdata/tools/mkcorpus-debian.py, the 50 000-passage long-question set.
CMRC    ?= ../shared/eval/cmrc2018
LONGSET ?=
bench:
	@ZHISOU_BENCH_SET=$(abspath $(CMRC)) $(GO) test -run='^$$' -bench=. -benchmem ./index/... ./retrieve/ > bench.out; \
	  status=$$?; cat bench.out; if [ $$status -ne 0 ]; then rm -f bench.out; exit $$status; fi
	@awk '/^BenchmarkBM25\// { split($$1, n, "/"); t[n[2] "/" n[3]] = $$3 } \
	  END { for (s in t) if (s ~ /pruned/) { e = s; sub(/pruned.*/, "exhaustive", e); sub(/-[0-9]+$$/, "", e); \
	    for (x in t) if (index(x, e) == 1) printf "BM25 %s: pruned/exhaustive = %.2f\n", s, t[s] / t[x] } }' bench.out
	@rm -f bench.out
	@if [ -d $(CMRC) ]; then $(GO) run ./cmd/zhisou eval -data $(CMRC) -baseline bleve -warm; fi
	$(GO) run ./cmd/zhisou eval -data testdata/eval -corpus testdata/courses -baseline bleve -warm
	@if [ -n "$(LONGSET)" ]; then $(GO) run ./cmd/zhisou eval -data $(LONGSET) -baseline bleve -warm; fi

eval:
	$(GO) run ./cmd/zhisou eval -data testdata/eval -corpus testdata/courses -baseline bleve
	@if [ -d ../shared/eval/cmrc2018 ]; then $(GO) run ./cmd/zhisou eval -data ../shared/eval/cmrc2018 -baseline bleve; fi

# The README's run command: the server on an embedded store, with the
# testdata courses as a demo knowledge base when the store is empty.
run:
	$(GO) run ./cmd/zhisou serve -store $(STORE) -addr $(ADDR) -demo testdata/courses

tools: bin/protoc-gen-go bin/protoc-gen-go-grpc bin/protoc-gen-grpc-gateway bin/protoc-gen-openapiv2 bin/buf

bin/protoc-gen-go:
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
bin/protoc-gen-go-grpc:
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
bin/protoc-gen-grpc-gateway:
	GOBIN=$(CURDIR)/bin $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@v2.34.0
bin/protoc-gen-openapiv2:
	GOBIN=$(CURDIR)/bin $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@v2.34.0
bin/buf:
	GOBIN=$(CURDIR)/bin $(GO) install github.com/bufbuild/buf/cmd/buf@v1.75.0

clean:
	rm -rf bin dist $(STORE)
