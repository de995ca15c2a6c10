package server

import (
	"fmt"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/httpapi"
	"github.com/consentgate/consentgate/internal/replica"
	"github.com/consentgate/consentgate/internal/store"
)

// dataReader is what the data API (/v1, /fdx/v6, sync) reads account data
// through: the primary's store, or the replica router over it.
type dataReader interface {
	accounts.Store
	accounts.PostedReader
	accounts.NumberStore
	httpapi.SyncStore
}

// readReplicas opens the --read-db replicas and returns the store the data
// API reads account data through. Only those reads move: the gate's token,
// consent, suspension and purpose checks, the limits and the audit log stay
// on the primary (docs/scaling.md, "Read replicas").
func (s *Server) readReplicas(primary *accounts.SQLStore) (dataReader, error) {
	if len(s.cfg.ReadDBs) == 0 {
		return primary, nil
	}
	if s.db.Dialect != store.Postgres {
		return nil, fmt.Errorf("--read-db needs a PostgreSQL primary (the primary is %s)", s.db.Dialect)
	}
	maxLag := s.cfg.ReadDBMaxLag
	if maxLag <= 0 {
		maxLag = config.DefaultReadDBMaxLag
	}
	set, err := replica.Open(s.db, s.cfg.ReadDBs, replica.Options{MaxLag: maxLag, Logger: s.log})
	if err != nil {
		return nil, err
	}
	s.replicas = set
	s.log.Info("read replicas", "count", len(s.cfg.ReadDBs), "max_lag", maxLag)
	return set.Accounts(primary), nil
}
