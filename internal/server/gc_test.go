package server_test

import (
	"runtime/debug"
	"testing"

	"github.com/consentgate/consentgate/internal/server"
)

// serve runs the collector at DefaultGCPercent, unless GOGC says otherwise.
func TestTuneGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	t.Setenv("GOGC", "")
	if got := server.TuneGC(); got != server.DefaultGCPercent {
		t.Fatalf("TuneGC without GOGC = %d, want %d", got, server.DefaultGCPercent)
	}
	if p := debug.SetGCPercent(100); p != server.DefaultGCPercent {
		t.Fatalf("GC percent in effect %d, want %d", p, server.DefaultGCPercent)
	}

	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150) // what the runtime made of GOGC=150 at start
	if got := server.TuneGC(); got != 150 {
		t.Fatalf("TuneGC with GOGC=150 = %d, want 150 (the environment wins)", got)
	}
	if p := debug.SetGCPercent(100); p != 150 {
		t.Fatalf("GC percent in effect %d, want 150", p)
	}
}
