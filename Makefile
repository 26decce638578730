# punchflow: build, test, lint, demo, bench.
# Every module is built and tested on its own (GOWORK=off), which also proves
# that each builds alone; go.work serves editors and `go run` at the root.

GO       ?= go
MODULES  := proto platform services/collector services/transformer services/loader services/healthwatch tools
SERVICES := collector transformer loader healthwatch
BIN      := bin
# Test time limit per module.
TEST_TIMEOUT ?= 20m
# Extra flags for the demo, e.g. make demo DEMO_ARGS="--postgres-url postgres://..."
DEMO_ARGS ?=
BENCH    ?= .
BENCHTIME ?= 1s

.PHONY: all build test test-short lint vet fmt demo bench tidy clean

all: lint test build

build:
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do \
		echo "build $(BIN)/$$s"; \
		(cd services/$$s && GOWORK=off $(GO) build -o ../../$(BIN)/$$s .) || exit 1; \
	done
	@echo "build $(BIN)/demo"; cd tools && GOWORK=off $(GO) build -o ../$(BIN)/demo ./cmd/demo

# Every module's tests with the race detector: the services, the platform and
# the end-to-end tests all run goroutines; the pure packages are cheap to
# include. Fuzz seed corpora run as ordinary tests.
test:
	@set -e; for m in $(MODULES); do \
		echo "=== test $$m"; \
		(cd $$m && GOWORK=off $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...); \
	done

# Quick loop while editing: no race detector, cached results.
test-short:
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) test -short ./...); done

lint: fmt vet

fmt:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) vet ./...); done

# The whole pipeline on this machine: embedded NATS, the four services as
# separate processes, generated CSV punches, SQLite (or the databases given).
demo: build
	./$(BIN)/demo --bin $(BIN) $(DEMO_ARGS)

# Benchmarks of every module, printed as one table.
bench:
	@set -e; for m in $(MODULES); do \
		(cd $$m && GOWORK=off $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./...); \
	done | tee $(BIN)/bench.txt 2>/dev/null || true
	@cd tools && GOWORK=off $(GO) run ./cmd/benchtable < ../$(BIN)/bench.txt

tidy:
	@for m in $(MODULES); do echo "tidy $$m"; (cd $$m && GOWORK=off $(GO) mod tidy -e) || exit 1; done

clean:
	rm -rf $(BIN) demo-data
