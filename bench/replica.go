package bench

// The read-replica pair (docs/scaling.md, "Read replicas"): the gated
// transactions page on a node that reads account data from a streaming
// replica, and on a node of the same primary without one.
const (
	EpReplicaPage = "transactions_via_replica" // GET …/transactions?limit=100, account data read on a streaming replica
	EpPrimaryPage = "transactions_via_primary" // the same page on a node of the same primary without --read-db
)

// writeReplica renders the replica ratio (nothing when it was not measured).
func (r *Report) writeReplica(p func(format string, args ...any)) {
	var rows []string
	for _, db := range r.dbs() {
		for _, n := range r.sizes(db) {
			if _, ok := r.find(db, n, EpReplicaPage); ok {
				rows = append(rows, "| "+db+" | "+SizeLabel(n)+" | "+r.ratio(db, n, EpReplicaPage, EpPrimaryPage)+" |")
			}
		}
	}
	if len(rows) == 0 {
		return
	}
	p("")
	p("### Read replica")
	p("")
	p("The gated transactions page on a node with `--read-db` (the page's account data read on a streaming replica")
	p("made by `pg_basebackup -R`; the gate, limits and audit on the primary) over the same page on a node of the")
	p("same primary without it, side by side. Both servers share this machine's cores, so the ratio is the cost of")
	p("the extra hop and the routing, not the capacity a replica on its own host adds.")
	p("")
	p("| db | transactions | page via replica / via primary |")
	p("|---|---:|---:|")
	for _, row := range rows {
		p("%s", row)
	}
}
