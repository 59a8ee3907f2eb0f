# Ferric. `make help` lists the targets.

GO          ?= go
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X github.com/ferric-metal/ferric/shared/buildinfo.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0
PROGRAMS    := ferric-public-api=./public-api \
               ferric-agent-api=./agent-api \
               ferric-conductor=./conductor/cmd/ferric-conductor \
               ferric=./conductor/cmd/ferric \
               ferric-redfish-sim=./drivers/redfish/redfishsim/ferric-redfish-sim
# The deploy agent runs in a ramdisk: static, for both architectures.
AGENT_ARCHS := amd64 arm64

.PHONY: help build run test bench lint clean clean-data ramdisk

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build the programs into bin/
	@mkdir -p bin
	@for p in $(PROGRAMS); do \
		name=$${p%%=*}; pkg=$${p#*=}; \
		echo "go build -o bin/$$name $$pkg"; \
		$(GO) build -ldflags "$(LDFLAGS)" -o bin/$$name $$pkg || exit 1; \
	done
	@for arch in $(AGENT_ARCHS); do \
		echo "CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -o bin/ferric-agent-linux-$$arch ./agent-api/ferric-agent"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS) -s -w" \
			-o bin/ferric-agent-linux-$$arch ./agent-api/ferric-agent || exit 1; \
	done
	@ln -sf ferric-agent-linux-$$($(GO) env GOARCH) bin/ferric-agent

ramdisk: ## build the deploy ramdisk (kernel, initramfs, ISO) from Debian packages into bin/ramdisk/; ARCH=arm64 for arm
	VERSION=$(VERSION) deployments/ramdisk/build.sh --out bin/ramdisk --arch $(or $(ARCH),amd64)

run: build ## run the whole service locally (private PostgreSQL unless FERRIC_DATABASE_URL is set)
	bin/ferric dev

test: ## run every test with the race detector (throwaway PostgreSQL unless FERRIC_TEST_DATABASE_URL is set)
	$(GO) test -race -count=1 ./...

bench: ## run the benchmarks and print their figures
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 ./...

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean: ## remove built programs
	rm -rf bin

clean-data: ## remove the local stack's database and keys (.ferric/)
	rm -rf .ferric
