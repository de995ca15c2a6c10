// Package replica sends the data API's account, balance and transaction
// reads to PostgreSQL streaming replicas of the primary (serve --read-db),
// within a lag it measures and bounds, and falls back to the primary
// whenever a replica is behind, lost or not a standby. It decides nothing
// about access: the gate decides on the primary (token, consent,
// suspension, revocation, purpose, limits, audit) before any read is made,
// and nothing this package reads is ever consulted for that decision
// (docs/scaling.md, "Read replicas").
package replica

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/consentgate/consentgate/internal/store"
)

// DefaultInterval is how often the lag of every replica is measured.
const DefaultInterval = 250 * time.Millisecond

// probeTimeout bounds one measurement of one server: a replica that does
// not answer within it is down for this round.
const probeTimeout = time.Second

// historySpan is how long the primary's WAL positions are remembered: the
// longest lag that can be told apart (a replica further behind shows at
// least this much).
const historySpan = 5 * time.Minute

// Replica states, as /readyz and the logs show them.
const (
	StateStarting   = "starting"    // not measured yet: serves nothing
	StateHealthy    = "healthy"     // within the lag bound: serves reads
	StateLagging    = "lagging"     // behind the primary by more than the bound
	StateDown       = "down"        // does not answer, or a read on it failed
	StateNotStandby = "not_standby" // answers but is not in recovery: a promoted or wrong server
)

// Status is one replica's state.
type Status struct {
	Name  string  `json:"name"`
	State string  `json:"state"`
	Lag   float64 `json:"lag_seconds"` // measured lag; -1 when unknown (down, starting)
}

// Set is the primary and its read replicas, with the background monitor
// that measures each replica's lag.
type Set struct {
	primary  *store.DB
	nodes    []*node
	maxLag   time.Duration
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time
	rr       atomic.Uint64

	mu      sync.Mutex
	history []walSample // the primary's WAL position over time, oldest first

	lagGauge  *prometheus.GaugeVec
	usable    *prometheus.GaugeVec
	reads     *prometheus.CounterVec
	fallbacks *prometheus.CounterVec

	stop context.CancelFunc
	done chan struct{}
}

type walSample struct {
	at  time.Time
	lsn uint64
}

type node struct {
	i    int
	name string
	db   *store.DB
	ok   atomic.Bool // serves reads: measured healthy and no read failed since

	mu    sync.Mutex
	state string
	lag   time.Duration
	err   string
}

// Options tune Open.
type Options struct {
	// MaxLag is the lag bound: a replica further behind serves nothing.
	MaxLag time.Duration
	// Interval is the time between two lag measurements (0: DefaultInterval).
	Interval time.Duration
	Logger   *slog.Logger
}

// Open connects lazily to the replicas at urls (a replica that is down now
// serves nothing until it answers) and starts measuring their lag against
// primary. Close stops it and closes the replicas' pools.
func Open(primary *store.DB, urls []string, o Options) (*Set, error) {
	if primary.Dialect != store.Postgres {
		return nil, fmt.Errorf("replica.Open: read replicas need a PostgreSQL primary, not %s", primary.Dialect)
	}
	if o.MaxLag <= 0 {
		return nil, fmt.Errorf("replica.Open: the lag bound must be positive (it is %s)", o.MaxLag)
	}
	s := &Set{primary: primary, maxLag: o.MaxLag, interval: o.Interval, log: o.Logger, now: time.Now}
	if s.interval <= 0 {
		s.interval = DefaultInterval
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.lagGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "consentgate_replica_lag_seconds",
		Help: "How far each read replica is behind the primary, measured from WAL positions (an idle primary: 0); -1 when unknown.",
	}, []string{"replica"})
	s.usable = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "consentgate_replica_usable",
		Help: "1 when the read replica serves reads (answers, is a standby, within --read-db-max-lag), else 0.",
	}, []string{"replica"})
	s.reads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "consentgate_data_reads_total",
		Help: "Account, balance and transaction reads of the data API by the server that answered them: replica or primary.",
	}, []string{"target"})
	s.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "consentgate_replica_fallbacks_total",
		Help: "Data reads sent to the primary instead of a replica, by reason: no_usable_replica, replica_error, not_on_replica, behind_cursor.",
	}, []string{"reason"})
	seen := map[string]int{}
	for i, u := range urls {
		db, err := store.Open(u, store.Options{Lazy: true})
		if err != nil {
			s.closeNodes()
			return nil, fmt.Errorf("replica.Open: --read-db number %d: %w", i+1, err)
		}
		if db.Dialect != store.Postgres {
			_ = db.Close()
			s.closeNodes()
			return nil, fmt.Errorf("replica.Open: --read-db number %d is not a PostgreSQL URL", i+1)
		}
		name := label(u)
		if seen[name]++; seen[name] > 1 {
			name += "#" + strconv.Itoa(seen[name])
		}
		n := &node{i: i, name: name, db: db, state: StateStarting, lag: -1}
		s.nodes = append(s.nodes, n)
		s.lagGauge.WithLabelValues(name).Set(-1)
		s.usable.WithLabelValues(name).Set(0)
	}
	for _, t := range []string{"replica", "primary"} {
		s.reads.WithLabelValues(t)
	}
	for _, r := range []string{reasonNoReplica, reasonError, reasonNotOnReplica, reasonBehindCursor} {
		s.fallbacks.WithLabelValues(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go s.run(ctx)
	return s, nil
}

// label names a replica in metrics and /readyz: its host, port and
// database, never its user or password.
func label(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "replica"
	}
	return u.Host + u.Path
}

// Fallback reasons.
const (
	reasonNoReplica    = "no_usable_replica"
	reasonError        = "replica_error"
	reasonNotOnReplica = "not_on_replica"
	reasonBehindCursor = "behind_cursor"
)

// Collectors are the Set's Prometheus metrics.
func (s *Set) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.lagGauge, s.usable, s.reads, s.fallbacks}
}

// Status lists the replicas' states in --read-db order.
func (s *Set) Status() []Status {
	out := make([]Status, 0, len(s.nodes))
	for _, n := range s.nodes {
		n.mu.Lock()
		st := Status{Name: n.name, State: n.state, Lag: -1}
		if n.lag >= 0 && n.state != StateDown && n.state != StateStarting {
			st.Lag = n.lag.Seconds()
		}
		n.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// Close stops the monitor and closes the replicas' pools.
func (s *Set) Close() error {
	s.stop()
	<-s.done
	return s.closeNodes()
}

func (s *Set) closeNodes() error {
	var first error
	for _, n := range s.nodes {
		if err := n.db.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// pick returns the next usable replica in turn, or nil when none is: the
// reads spread evenly over the usable ones.
func (s *Set) pick() *node {
	usable := 0
	for _, n := range s.nodes {
		if n.ok.Load() {
			usable++
		}
	}
	if usable == 0 {
		return nil
	}
	k := int(s.rr.Add(1) % uint64(usable)) // #nosec G115 -- usable ≥ 1, a handful of replicas
	for _, n := range s.nodes {
		if n.ok.Load() {
			if k == 0 {
				return n
			}
			k--
		}
	}
	return nil // one went out of service meanwhile: this read takes the primary
}

// failed takes a replica out of service after a read on it failed: the
// next measurement that succeeds puts it back.
func (s *Set) failed(n *node, err error) {
	if n.ok.CompareAndSwap(true, false) {
		s.usable.WithLabelValues(n.name).Set(0)
		s.log.Warn("read replica failed a read: reads go elsewhere until it answers again", "replica", n.name, "err", err)
	}
	n.mu.Lock()
	n.state, n.err = StateDown, err.Error()
	n.mu.Unlock()
}

func (s *Set) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.measure(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// measure samples the primary's WAL position, then every replica's replay
// position, and judges each replica by the newest primary position it has
// replayed (lagOf).
func (s *Set) measure(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	lsn, err := walPosition(pctx, s.primary, "SELECT pg_current_wal_lsn()::text")
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			// Without the primary's position no lag can be judged; the gate
			// needs the primary anyway, so nothing is served meanwhile.
			s.log.Warn("read replicas: the primary's WAL position cannot be read; no replica serves until it can", "err", err)
			for _, n := range s.nodes {
				s.judge(n, StateStarting, -1, "the primary's WAL position is unknown")
			}
		}
		return
	}
	s.record(walSample{at: s.now(), lsn: lsn})
	var wg sync.WaitGroup
	for _, n := range s.nodes {
		wg.Go(func() { s.probe(ctx, n) })
	}
	wg.Wait()
}

func (s *Set) probe(parent context.Context, n *node) {
	ctx, cancel := context.WithTimeout(parent, probeTimeout)
	defer cancel()
	var (
		standby bool
		replay  *string
	)
	err := n.db.SQL().QueryRowContext(ctx, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text").Scan(&standby, &replay)
	at := s.now()
	switch {
	case err != nil && parent.Err() != nil:
		return // shutting down
	case err != nil && ctx.Err() != nil:
		s.judge(n, StateDown, -1, "no answer within "+probeTimeout.String())
	case err != nil:
		s.judge(n, StateDown, -1, err.Error())
	case !standby:
		s.judge(n, StateNotStandby, -1, "the server is not in recovery: not a streaming replica (promoted?)")
	case replay == nil:
		s.judge(n, StateLagging, -1, "the standby has replayed nothing yet")
	default:
		l, err := parseLSN(*replay)
		if err != nil {
			s.judge(n, StateDown, -1, err.Error())
			return
		}
		lag, known := s.lagOf(l, at)
		switch {
		case !known:
			s.judge(n, StateLagging, lag, "behind every remembered position of the primary")
		case lag > s.maxLag:
			s.judge(n, StateLagging, lag, "")
		default:
			s.judge(n, StateHealthy, lag, "")
		}
	}
}

// judge records a replica's measured state and puts it in or out of
// service.
func (s *Set) judge(n *node, state string, lag time.Duration, why string) {
	n.mu.Lock()
	was := n.state
	n.state, n.lag, n.err = state, lag, why
	n.mu.Unlock()
	ok := state == StateHealthy
	n.ok.Store(ok)
	if ok {
		s.usable.WithLabelValues(n.name).Set(1)
	} else {
		s.usable.WithLabelValues(n.name).Set(0)
	}
	if lag >= 0 {
		s.lagGauge.WithLabelValues(n.name).Set(lag.Seconds())
	} else {
		s.lagGauge.WithLabelValues(n.name).Set(-1)
	}
	if was != state {
		s.log.Info("read replica state", "replica", n.name, "state", state, "was", was, "lag", lag, "why", why)
	}
}

// record appends a sample of the primary's WAL position and forgets the
// ones older than historySpan.
func (s *Set) record(w walSample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = append(s.history, w)
	cut := 0
	for cut < len(s.history)-1 && w.at.Sub(s.history[cut].at) > historySpan {
		cut++
	}
	if cut > 0 {
		s.history = append(s.history[:0], s.history[cut:]...)
	}
}

// lagOf is how stale a replica that has replayed up to replay is at the
// instant at: a standby that has replayed the primary's WAL up to the
// position the primary had written at time t holds every transaction
// committed by t (a commit returns after its commit record is written), so
// its data is at most at−t old, t being the newest sample it has reached.
// On an idle primary the position does not move: a standby that replayed
// it is 0 behind, however long ago the last write was (the flaw of
// now() − pg_last_xact_replay_timestamp()). The figure is an upper bound,
// coarse by one measurement interval. known is false when the replica is
// behind every remembered sample: it is then at least lag behind.
func (s *Set) lagOf(replay uint64, at time.Time) (lag time.Duration, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.history) - 1; i >= 0; i-- {
		if s.history[i].lsn <= replay {
			if i == len(s.history)-1 {
				return 0, true // has everything the primary had at the last sample
			}
			return max(0, at.Sub(s.history[i].at)), true
		}
	}
	if len(s.history) == 0 {
		return -1, false
	}
	return max(0, at.Sub(s.history[0].at)), false
}

// walPosition reads one pg_lsn as text.
func walPosition(ctx context.Context, db *store.DB, query string) (uint64, error) {
	var v string
	if err := db.SQL().QueryRowContext(ctx, query).Scan(&v); err != nil {
		return 0, err
	}
	return parseLSN(v)
}

// parseLSN reads PostgreSQL's "XXXXXXXX/YYYYYYYY" WAL position.
func parseLSN(v string) (uint64, error) {
	hi, lo, ok := strings.Cut(v, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("replica: %q is not a WAL position", v)
	}
	return h<<32 | l, nil
}
