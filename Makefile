# punchflow: build, test, lint, demo, bench.
# Every module is built and tested on its own (GOWORK=off), which also proves
# that each builds alone; go.work serves editors and `go run` at the root.

GO       ?= go
MODULES  := proto platform services/collector services/transformer services/loader services/healthwatch tools deploy
SERVICES := collector transformer loader healthwatch
BIN      := bin
# The build stamped into every binary (--version, the start-up log,
# punchflow_build_info): platform/version, set with -ldflags -X.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKG := github.com/punchflow/punchflow/platform/version
LDFLAGS  := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Commit=$(COMMIT) -X $(VERSION_PKG).Date=$(DATE)
# make images: one image per service, deploy/docker/<service>.Dockerfile.
DOCKER   ?= docker
IMAGE_REPO ?= ghcr.io/punchflow
IMAGE_TAG  ?= $(VERSION)
# Test time limit per module.
TEST_TIMEOUT ?= 20m
# Extra flags for the demo, e.g. make demo DEMO_ARGS="--postgres-url postgres://..."
DEMO_ARGS ?=
BENCH    ?= .
BENCHTIME ?= 1s

.PHONY: all build images docs test test-short lint vet fmt demo bench tidy clean

all: lint test build

build:
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do \
		echo "build $(BIN)/$$s"; \
		(cd services/$$s && GOWORK=off $(GO) build -ldflags "$(LDFLAGS)" -o ../../$(BIN)/$$s .) || exit 1; \
	done
	@for t in zksim apisim; do \
		echo "build $(BIN)/$$t"; \
		(cd services/collector && GOWORK=off $(GO) build -o ../../$(BIN)/$$t ./cmd/$$t) || exit 1; \
	done
	@echo "build $(BIN)/demo"; cd tools && GOWORK=off $(GO) build -o ../$(BIN)/demo ./cmd/demo

# Container images (needs a Docker engine with BuildKit): static binaries on
# distroless/static, non-root, the version stamped as in make build.
images:
	@for s in $(SERVICES); do \
		echo "image $(IMAGE_REPO)/$$s:$(IMAGE_TAG)"; \
		$(DOCKER) build -f deploy/docker/$$s.Dockerfile \
			--build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg DATE=$(DATE) \
			-t $(IMAGE_REPO)/$$s:$(IMAGE_TAG) . || exit 1; \
	done

# Regenerates docs/reference/wire.md from proto/ and platform/topology; the
# deploy module's tests fail while it is out of date.
docs:
	cd deploy && GOWORK=off $(GO) test -count=1 -run TestWireReferenceUpToDate ./internal/reference -update

# Every module's tests with the race detector: the services, the platform and
# the end-to-end tests all run goroutines; the pure packages are cheap to
# include. Fuzz seed corpora run as ordinary tests.
# Every module runs even when an earlier one fails, so one run shows every
# failure; the target fails if any module did.
test:
	@failed=""; for m in $(MODULES); do \
		echo "=== test $$m"; \
		(cd $$m && GOWORK=off $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...) || failed="$$failed $$m"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAIL: tests failed in:$$failed"; exit 1; fi; \
	echo "PASS: every module's tests passed"

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
	@mkdir -p $(BIN); : > $(CURDIR)/$(BIN)/bench.txt; \
	for m in $(MODULES); do \
		echo "bench $$m"; \
		(cd $$m && GOWORK=off $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./... \
			>> $(CURDIR)/$(BIN)/bench.txt 2>&1) || { tail -40 $(BIN)/bench.txt; echo "FAIL: benchmarks of $$m"; exit 1; }; \
	done
	@cd tools && GOWORK=off $(GO) run ./cmd/benchtable < $(CURDIR)/$(BIN)/bench.txt

tidy:
	@for m in $(MODULES); do echo "tidy $$m"; (cd $$m && GOWORK=off $(GO) mod tidy -e) || exit 1; done

clean:
	rm -rf $(BIN) demo-data
