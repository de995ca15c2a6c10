# consentgate — the commands a newcomer needs. See README.md.
GO      ?= go
PKGS    ?= ./...
BIN     ?= bin/consentgate

.PHONY: run test test-sqlite build lint vet fmt bench clean fuzz chaos soak gosec cluster

## run: serve the demo on embedded SQLite (consentgate.db here) at http://localhost:8080; ADDR=:9090 serves it on
## another port (the issuer, and every URL the server advertises, follow the port)
ADDR ?= :8080
run:
	$(GO) run ./cmd/consentgate serve --demo --addr $(ADDR)

## test: gosec, then the whole suite on SQLite and on a throwaway PostgreSQL cluster, then the two-node
## PostgreSQL tests again through a local pgbouncer in transaction mode (scripts/with-pgbouncer), then make cluster
PGBOUNCER_TESTS ?= ^(TestPgBouncerPath|TestTwoNodeRevocation|TestTwoNodeSuspension)$$
test: gosec
	./scripts/with-postgres $(GO) test -count=1 -timeout 25m $(PKGS)
	./scripts/with-postgres ./scripts/with-pgbouncer $(GO) test -count=1 -timeout 10m -run '$(PGBOUNCER_TESTS)' ./internal/server/
	$(MAKE) --no-print-directory cluster

## test-sqlite: the suite on SQLite only (quick local loop)
test-sqlite:
	$(GO) test -count=1 $(PKGS)

# make bench's shape: transactions in each seeded database, the dialects, the load per endpoint, connections
# (closed loop), the open loop's fixed rate (req/s, over at most BENCH_CONNS connections) and the connections
# posting ingestion batches.
BENCH_SIZES        ?= 100000 1000000 10000000
BENCH_DB           ?= sqlite postgres
BENCH_DURATION     ?= 10s
BENCH_CONNS        ?= 50
BENCH_RATE         ?= 500
BENCH_INGEST_CONNS ?= 4

## bench: seed databases of BENCH_SIZES transactions (BENCH_DB), start the real server, take tokens through the
## real flow and load the data API, its ungated baselines and the token endpoint (vegeta, closed loop); the
## transactions page and its baseline again open loop at BENCH_RATE req/s; the sync endpoint (a first sync's first
## page of 500, an incremental sync of 100 changes, a whole first sync timed); then ingestion, batches of 5,000 new
## transactions through the provider API on BENCH_INGEST_CONNS connections. Prints the table and writes
## docs/benchmarks.md and docs/benchmarks.svg. Then what "no audit, no data" costs: the same reads with the
## durable audit write and without, side by side (req/s of each, their ratio, events/s appended and verified).
## Then audit appends per second from 1, 2 and 4 nodes on one database, the old chain (head row lock) vs the
## Merkle tree design (commit to audit_pending, integrate in batches): BenchmarkAuditNodes.
## Beside our token endpoint and introspection, the same load on oidc-provider 9.13.3 in memory (issue 18):
## bench/oidcprovider/, installed with npm ci when missing, skipped with a loud note without node or npm.
## The hand-written part of docs/benchmarks.md is docs/benchmarks-notes.md (BENCH_NOTES), appended as is;
## BENCH_OUT=DIR writes a reduced run's page elsewhere than docs/; BENCH_ONLY="token introspect" measures only the
## endpoints named (the reference's rows come with ours), for a quick look at one path.
bench:
	BENCH_SIZES="$(BENCH_SIZES)" BENCH_DB="$(BENCH_DB)" BENCH_DURATION=$(BENCH_DURATION) BENCH_CONNS=$(BENCH_CONNS) \
		BENCH_RATE=$(BENCH_RATE) BENCH_INGEST_CONNS=$(BENCH_INGEST_CONNS) \
		CONSENTGATE_TEST_PG_FSYNC=on ./scripts/with-postgres $(GO) test -tags bench -run '^TestBench$$' -v -count=1 -timeout 180m ./bench/
	./scripts/with-postgres $(GO) test -run '^$$' -bench AuditGate -benchtime 1x -count 1 -timeout 10m ./internal/server/
	CONSENTGATE_TEST_PG_FSYNC=on ./scripts/with-postgres $(GO) test -run '^$$' -bench AuditNodes -benchtime 1x -count 1 -timeout 10m ./internal/audit/

## fuzz: every fuzz target (go test -list) for FUZZTIME each, one after another; a failing input is saved
## under the package's testdata/fuzz/ and make test replays it (scripts/fuzz-all)
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz-all

## chaos: kill -9 a node CHAOS_KILLS times under a mixed load, on SQLite and PostgreSQL, checking after every kill
## that the audit log verifies and nothing was lost, half-written or honoured twice (internal/server/chaos_test.go)
CHAOS_KILLS ?= 20
chaos:
	CHAOS_KILLS=$(CHAOS_KILLS) ./scripts/with-postgres $(GO) test -tags chaos -run '^TestChaos$$' -count=1 -v -timeout 30m ./internal/server/

## cluster: scripts/cluster starts a PostgreSQL primary, a streaming replica (pg_basebackup) and three serve nodes on
## loopback; ~35 s of mixed load round the nodes while a grant is revoked and an app suspended (replica replay paused),
## a node killed with SIGKILL and the replica stopped; checks no 200 after a revoke or suspend returned, no 5xx, no read
## stale past the lag bound, nothing lost (internal/server/cluster_test.go; CI=true fails without PostgreSQL)
cluster:
	$(GO) test -tags cluster -run '^TestCluster$$' -count=1 -v -timeout 10m ./internal/server/

## soak: SOAK_DURATION of mixed load on one node (SOAK_DB=sqlite|postgres); prints its memory, goroutines and
## open files after a warm-up and at the end (internal/server/soak_test.go)
SOAK_DURATION ?= 30m
SOAK_DB       ?= sqlite
soak:
	SOAK_DURATION=$(SOAK_DURATION) SOAK_DB=$(SOAK_DB) ./scripts/with-postgres $(GO) test -tags soak -run '^TestSoak$$' -count=1 -v -timeout 0 ./internal/server/

## gosec: the security linter over ./...; every exclusion is a `#nosec Gxxx -- why` at its line. gosec is a Go tool
## dependency (the tool block of go.mod, pinned by go.sum): `go tool` builds it from the module cache
gosec:
	$(GO) tool gosec -quiet ./...

## build: the consentgate binary in bin/
build:
	$(GO) build -o $(BIN) ./cmd/consentgate

## lint: gofmt, go vet and golangci-lint (.golangci.yml); golangci-lint is a Go tool dependency like gosec, so
## nothing needs installing first
lint: fmt vet
	$(GO) tool golangci-lint run ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

clean:
	rm -rf bin consentgate.db consentgate.db-shm consentgate.db-wal
