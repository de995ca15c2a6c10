package bench

import (
	"fmt"
	"strings"
)

// Issue 18's targets beside the older ones (the gated page's closed-loop
// p99 and the gated/ungated ratio are evaluated with them in Targets):
// our token endpoint and introspection against oidc-provider in the same
// run, and the ungated baseline against the figures of the run before.

// referenceRatioTarget: ours ≥ 1.0 × oidc-provider, in req/s.
const referenceRatioTarget = 1.0

// ungatedGrowthTarget: the ungated baseline ≥ 2 × its earlier figure.
const ungatedGrowthTarget = 2.0

// ungatedBefore is the ungated page's req/s (ungated_transactions) of the
// full run in docs/benchmarks.md's Results table when issue 18 was taken
// up (the run of 2026-12-03, 50 connections, closed loop), by database
// and size: what "2 × today's figure" is measured against.
var ungatedBefore = map[string]map[int]float64{
	"sqlite":   {100_000: 2141, 1_000_000: 2151, 10_000_000: 1963},
	"postgres": {100_000: 3680, 1_000_000: 3921, 10_000_000: 3901},
}

// pairs of ours and the reference's, with the target's wording.
var referencePairs = []struct{ ours, ref, what string }{
	{EpToken, EpRefToken, "token endpoint (client_credentials, durable + audited, client_secret_basic)"},
	{EpIntrospect, EpRefIntrospect, "introspection of a consent access token"},
}

// issue18Targets are db's rows of issue 18 that Targets has no older row
// for.
func (r *Report) issue18Targets(db string, sizes []int) []Target {
	var out []Target
	for _, p := range referencePairs {
		t := Target{Name: fmt.Sprintf("%s: %s ≥ %.1f × %s in memory", db, p.what, referenceRatioTarget, ReferenceVersion)}
		ours, ok1 := r.findAny(db, p.ours)
		ref, ok2 := r.findAny(db, p.ref)
		if ok1 && ok2 && ref.RPS > 0 {
			ratio := ours.RPS / ref.RPS
			t.Known, t.Met = true, ratio >= referenceRatioTarget
			t.Measured = fmt.Sprintf("%s× (%.0f / %.0f req/s; p99 %s / %s ms)", ratioText(ratio, referenceRatioTarget), ours.RPS, ref.RPS, ms(ours.P99), ms(ref.P99))
		} else if ok1 {
			t.Measured = fmt.Sprintf("ours %.0f req/s; %s not measured (see the notes)", ours.RPS, ReferenceVersion)
		}
		out = append(out, t)
	}
	t := Target{Name: fmt.Sprintf("%s: ungated page baseline ≥ %.0f × its req/s before issue 18", db, ungatedGrowthTarget), Met: true}
	var parts []string
	for _, n := range sizes {
		m, ok := r.find(db, n, EpUngated)
		before, known := ungatedBefore[db][n]
		if !ok || !known {
			continue
		}
		ratio := m.RPS / before
		t.Known, t.Met = true, t.Met && ratio >= ungatedGrowthTarget
		parts = append(parts, fmt.Sprintf("%s %s× (%.0f / %.0f req/s)", SizeLabel(n), ratioText(ratio, ungatedGrowthTarget), m.RPS, before))
	}
	t.Measured = strings.Join(parts, ", ")
	return append(out, t)
}

// findAny returns db's first measurement of endpoint at whatever size (the
// token endpoint and introspection are measured at one size).
func (r *Report) findAny(db, endpoint string) (Measurement, bool) {
	for _, m := range r.Results {
		if m.DB == db && m.Endpoint == endpoint {
			return m, true
		}
	}
	return Measurement{}, false
}
