# consentgate — the commands a newcomer needs. See README.md.
GO      ?= go
PKGS    ?= ./...
BIN     ?= bin/consentgate

.PHONY: run test test-sqlite build lint vet fmt bench clean

## run: serve the demo on embedded SQLite (consentgate.db here) at http://localhost:8080
run:
	$(GO) run ./cmd/consentgate serve --demo

## test: the whole suite on SQLite and on a throwaway PostgreSQL cluster
test:
	./scripts/with-postgres $(GO) test -count=1 -timeout 25m $(PKGS)

## test-sqlite: the suite on SQLite only (quick local loop)
test-sqlite:
	$(GO) test -count=1 $(PKGS)

## bench: what "no audit, no data" costs: the same reads with the durable audit write and without, side by side
## in one run, on SQLite and PostgreSQL (prints req/s of each, their ratio, events/s appended and verified)
bench:
	./scripts/with-postgres $(GO) test -run '^$$' -bench AuditGate -benchtime 1x -count 1 -timeout 10m ./internal/server/

## build: the consentgate binary in bin/
build:
	$(GO) build -o $(BIN) ./cmd/consentgate

## lint: gofmt, go vet and golangci-lint (.golangci.yml)
lint: fmt vet
	@if command -v golangci-lint >/dev/null 2>&1; then golangci-lint run; \
	else echo "golangci-lint not installed: go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@latest"; exit 1; fi

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

clean:
	rm -rf bin consentgate.db consentgate.db-shm consentgate.db-wal
