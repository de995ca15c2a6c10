package server_test

import (
	"testing"

	"github.com/consentgate/consentgate/internal/testutil"
)

// pgCluster is a private PostgreSQL cluster a test may stop and start at
// will, unlike the shared one of scripts/with-postgres that every other
// test is using (testutil.PGCluster).
type pgCluster = testutil.PGCluster

// newPGCluster initdb's a private cluster and starts it
// (testutil.NewPGCluster).
func newPGCluster(t *testing.T) *pgCluster { return testutil.NewPGCluster(t) }
