package replica

import (
	"testing"
	"time"
)

// TestLagOf pins the lag arithmetic on WAL positions: a replica that has
// replayed the newest sampled primary position is 0 behind (also when the
// primary has been idle for an hour), one that stopped at an older
// position is behind by the time since the newest sample it reached, and
// one behind every remembered sample is at least as far behind as the
// oldest sample and not known.
func TestLagOf(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Set{}
	for i, lsn := range []uint64{100, 200, 200, 300} {
		s.record(walSample{at: t0.Add(time.Duration(i) * time.Second), lsn: lsn})
	}
	at := t0.Add(3500 * time.Millisecond)
	for _, c := range []struct {
		name   string
		replay uint64
		lag    time.Duration
		known  bool
	}{
		{"caught up", 300, 0, true},
		{"ahead of the last sample", 350, 0, true},
		{"stopped between samples", 250, 1500 * time.Millisecond, true}, // has what the primary had at t0+2s
		{"at an old position", 200, 1500 * time.Millisecond, true},
		{"at the first", 150, 3500 * time.Millisecond, true},
		{"behind everything", 50, 3500 * time.Millisecond, false},
	} {
		lag, known := s.lagOf(c.replay, at)
		if lag != c.lag || known != c.known {
			t.Errorf("%s: lag %s known %v, want %s %v", c.name, lag, known, c.lag, c.known)
		}
	}
	idle := &Set{}
	idle.record(walSample{at: t0, lsn: 500})
	idle.record(walSample{at: t0.Add(time.Hour), lsn: 500})
	if lag, known := idle.lagOf(500, t0.Add(time.Hour)); lag != 0 || !known {
		t.Errorf("idle primary: lag %s known %v, want 0", lag, known)
	}
}

// TestHistorySpan: samples older than historySpan are forgotten, the
// newest always kept.
func TestHistorySpan(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Set{}
	for i := range 700 {
		s.record(walSample{at: t0.Add(time.Duration(i) * time.Second), lsn: uint64(i)})
	}
	if first, last := s.history[0], s.history[len(s.history)-1]; last.at.Sub(first.at) > historySpan || last.lsn != 699 {
		t.Fatalf("history from %v to %v (%d samples)", first, last, len(s.history))
	}
}

func TestParseLSN(t *testing.T) {
	for in, want := range map[string]uint64{"0/0": 0, "0/16B3748": 0x16B3748, "1/0": 1 << 32, "FFFFFFFF/FFFFFFFF": 1<<64 - 1} {
		if got, err := parseLSN(in); err != nil || got != want {
			t.Errorf("parseLSN(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "16B3748", "x/1", "1/", "100000000/0"} {
		if _, err := parseLSN(bad); err == nil {
			t.Errorf("parseLSN(%q) accepted", bad)
		}
	}
}

// TestPickSpreads: reads go round the usable replicas only, and to none
// when none is usable.
func TestPickSpreads(t *testing.T) {
	s := &Set{}
	for i, ok := range []bool{true, false, true} {
		n := &node{i: i}
		n.ok.Store(ok)
		s.nodes = append(s.nodes, n)
	}
	got := map[int]int{}
	for range 100 {
		got[s.pick().i]++
	}
	if got[1] != 0 || got[0] != 50 || got[2] != 50 {
		t.Fatalf("picks per replica: %v", got)
	}
	for _, n := range s.nodes {
		n.ok.Store(false)
	}
	if n := s.pick(); n != nil {
		t.Fatalf("picked replica %d with none usable", n.i)
	}
}
