package audit

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"sort"
	"time"

	"github.com/consentgate/consentgate/internal/store"
)

// ActivityReport is the auditor's summary of a time range (SPEC §13,
// `consentgate audit report`). A call is a data.access event; a refusal is
// a data.access event with outcome denied. Every figure is a count of
// events an export of the same range (since inclusive, until exclusive)
// holds, so it can be recomputed from that export.
type ActivityReport struct {
	Since, Until time.Time
	Generated    time.Time
	Events       int64 // every event in the range, of every type
	Calls        int64
	Refusals     int64
	ByApp        []Tally // by client_id, most calls first
	ByPurpose    []Tally // by purpose ("" shown as "(none)")
	ByDay        []Tally // by UTC day of occurred_at, in order, days without events included
	Reasons      []Tally // refusal reasons, most frequent first (Calls = Refusals = count)
	ByType       []Tally // every event type in the range (Calls = count)
	FirstSeq     int64   // the range's first and last seq (0 when empty)
	LastSeq      int64
	TreeHead     *TreeHead // the newest signed tree head when generated
}

// Tally is one bar of a chart: calls and, of them, refusals.
type Tally struct {
	Key      string
	Calls    int64
	Refusals int64
}

// Allowed is Calls - Refusals.
func (t Tally) Allowed() int64 { return t.Calls - t.Refusals }

// ActivityReport integrates pending events and summarises [since, until)
// in one pass over the range (constant memory but for the distinct apps,
// purposes, days and reasons).
func (r *Reader) ActivityReport(ctx context.Context, since, until time.Time) (*ActivityReport, error) {
	if !since.Before(until) {
		return nil, fmt.Errorf("audit.ActivityReport: since %s must be before until %s", FormatTime(since), FormatTime(until))
	}
	if until.Sub(since) > 3660*24*time.Hour {
		return nil, fmt.Errorf("audit.ActivityReport: the range is longer than ten years")
	}
	if err := r.sync(ctx); err != nil {
		return nil, fmt.Errorf("audit.ActivityReport: %w", err)
	}
	rep := &ActivityReport{Since: since.UTC(), Until: until.UTC(), Generated: time.Now().UTC()}
	rows, err := r.db.WithContext(ctx).Raw(`SELECT seq, occurred_at, type, outcome, reason, client_id, purpose FROM audit_events
		WHERE occurred_at >= ? AND occurred_at < ? ORDER BY seq`, store.Micros(since), store.Micros(until)).Rows()
	if err != nil {
		return nil, fmt.Errorf("audit.ActivityReport: %w", err)
	}
	defer rows.Close()
	apps, purposes, days, reasons, types := map[string]*Tally{}, map[string]*Tally{}, map[string]*Tally{}, map[string]*Tally{}, map[string]*Tally{}
	bump := func(m map[string]*Tally, k string, refused bool) {
		t := m[k]
		if t == nil {
			t = &Tally{Key: k}
			m[k] = t
		}
		t.Calls++
		if refused {
			t.Refusals++
		}
	}
	for rows.Next() {
		var seq, occurred int64
		var typ, outcome, reason, client, purpose string
		if err := rows.Scan(&seq, &occurred, &typ, &outcome, &reason, &client, &purpose); err != nil {
			return nil, fmt.Errorf("audit.ActivityReport: %w", err)
		}
		if rep.FirstSeq == 0 {
			rep.FirstSeq = seq
		}
		rep.LastSeq = seq
		rep.Events++
		bump(types, typ, false)
		if Type(typ) != DataAccess {
			continue
		}
		refused := Outcome(outcome) == Denied
		rep.Calls++
		if refused {
			rep.Refusals++
			bump(reasons, reason, true)
		}
		if purpose == "" {
			purpose = "(none)"
		}
		bump(apps, client, refused)
		bump(purposes, purpose, refused)
		bump(days, store.FromMicros(occurred).UTC().Format(time.DateOnly), refused)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit.ActivityReport: %w", err)
	}
	rep.ByApp, rep.ByPurpose, rep.Reasons, rep.ByType = ranked(apps), ranked(purposes), ranked(reasons), ranked(types)
	for d := rep.Since.Truncate(24 * time.Hour); d.Before(rep.Until); d = d.Add(24 * time.Hour) {
		k := d.Format(time.DateOnly)
		t := Tally{Key: k}
		if days[k] != nil {
			t = *days[k]
		}
		rep.ByDay = append(rep.ByDay, t)
	}
	if rep.TreeHead, err = latestTreeHead(ctx, r.db); err != nil {
		return nil, fmt.Errorf("audit.ActivityReport: %w", err)
	}
	return rep, nil
}

func ranked(m map[string]*Tally) []Tally {
	out := make([]Tally, 0, len(m))
	for _, t := range m {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Calls != out[j].Calls {
			return out[i].Calls > out[j].Calls
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// chart is a horizontal bar chart as inline SVG data.
type chart struct {
	ID, Title string
	Rows      []chartRow
	Height    int
	Legend    bool
}

type chartRow struct {
	Label                   string
	Tally                   Tally
	Y, AllowedW, RefusedW   int
	TextY, RefusedX, ValueX int
}

const (
	chartLabelW = 220
	chartBarW   = 460
	chartRowH   = 26
)

func newChart(id, title string, tallies []Tally, legend bool) chart {
	var maxCalls int64 = 1
	for _, t := range tallies {
		maxCalls = max(maxCalls, t.Calls)
	}
	c := chart{ID: id, Title: title, Height: max(1, len(tallies))*chartRowH + 8, Legend: legend}
	for i, t := range tallies {
		y := 4 + i*chartRowH
		aw := int(t.Allowed() * chartBarW / maxCalls)
		rw := int(t.Refusals * chartBarW / maxCalls)
		label := t.Key
		if len(label) > 32 {
			label = label[:31] + "…"
		}
		c.Rows = append(c.Rows, chartRow{Label: label, Tally: t, Y: y, AllowedW: aw, RefusedW: rw,
			TextY: y + 17, RefusedX: chartLabelW + aw, ValueX: chartLabelW + aw + rw + 6})
	}
	return c
}

// WriteHTML writes rep as one self-contained HTML file: inline CSS and SVG,
// no script, no external resource, so it opens offline and can be archived
// as evidence. Every figure also carries a data- attribute, for tools.
func (rep *ActivityReport) WriteHTML(w io.Writer) error {
	data := struct {
		*ActivityReport
		Charts   []chart
		LabelW   int
		BarW     int
		Since    string
		Until    string
		Generate string
		HeadTime string
	}{ActivityReport: rep, LabelW: chartLabelW, BarW: chartBarW,
		Since: FormatTime(rep.Since), Until: FormatTime(rep.Until), Generate: FormatTime(rep.Generated)}
	if rep.TreeHead != nil {
		data.HeadTime = FormatTime(time.UnixMilli(rep.TreeHead.Timestamp))
	}
	data.Charts = []chart{
		newChart("by-app", "Calls and refusals per app", rep.ByApp, true),
		newChart("by-purpose", "Calls and refusals per purpose", rep.ByPurpose, true),
		newChart("by-day", "Calls and refusals per day (UTC)", rep.ByDay, true),
		newChart("reasons", "Refusal reasons", rep.Reasons, false),
	}
	return reportTemplate.Execute(w, data)
}

var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>consentgate audit report {{.Since}} to {{.Until}}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; color: #1b1b1b; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; } th, td { text-align: left; padding: .25rem .75rem .25rem 0; border-bottom: 1px solid #ddd; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.summary { display: flex; gap: 2rem; } .summary div { background: #f3f5f8; padding: .75rem 1.25rem; border-radius: 6px; }
.summary strong { display: block; font-size: 1.6rem; }
svg text { font: 13px system-ui, sans-serif; fill: #1b1b1b; }
.allowed { fill: #2e7d4f; } .refused { fill: #c0392b; }
.legend span { display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 1rem; vertical-align: -1px; }
.legend .allowed { background: #2e7d4f; } .legend .refused { background: #c0392b; }
code, pre { font: 12px ui-monospace, monospace; } pre { background: #f3f5f8; padding: .75rem; overflow-x: auto; }
</style>
</head>
<body>
<h1>Audit report</h1>
<p>Events with <code>occurred_at</code> from <time data-since>{{.Since}}</time> (inclusive) to <time data-until>{{.Until}}</time> (exclusive), generated {{.Generate}}.
A <em>call</em> is a <code>data.access</code> event; a <em>refusal</em> is one with outcome <code>denied</code>.
Every figure can be recomputed from <code>consentgate audit export --since {{.Since}} --until {{.Until}}</code>.</p>
<div class="summary">
  <div><strong data-events>{{.Events}}</strong>events</div>
  <div><strong data-calls>{{.Calls}}</strong>data calls</div>
  <div><strong data-refusals>{{.Refusals}}</strong>refused</div>
</div>
{{- range .Charts}}
<section id="{{.ID}}">
<h2>{{.Title}}</h2>
{{- if .Rows}}
{{- if .Legend}}<p class="legend"><span class="allowed"></span>allowed<span class="refused"></span>refused</p>{{end}}
<svg role="img" aria-label="{{.Title}}" width="760" height="{{.Height}}" viewBox="0 0 760 {{.Height}}" style="width:100%;max-width:760px;height:auto">
{{- range .Rows}}
  <text x="0" y="{{.TextY}}">{{.Label}}</text>
  <rect class="allowed" x="{{$.LabelW}}" y="{{.Y}}" width="{{.AllowedW}}" height="20"><title>{{.Tally.Allowed}} allowed</title></rect>
  <rect class="refused" x="{{.RefusedX}}" y="{{.Y}}" width="{{.RefusedW}}" height="20"><title>{{.Tally.Refusals}} refused</title></rect>
  <text x="{{.ValueX}}" y="{{.TextY}}">{{.Tally.Calls}}</text>
{{- end}}
</svg>
<table data-chart="{{.ID}}">
  <thead><tr><th>{{if eq .ID "reasons"}}Reason{{else}}Key{{end}}</th><th class="n">Calls</th><th class="n">Refused</th></tr></thead>
  <tbody>
  {{- range .Rows}}
  <tr data-key="{{.Tally.Key}}"><td>{{.Tally.Key}}</td><td class="n" data-calls>{{.Tally.Calls}}</td><td class="n" data-refusals>{{.Tally.Refusals}}</td></tr>
  {{- end}}
  </tbody>
</table>
{{- else}}
<p>Nothing in this range.</p>
{{- end}}
</section>
{{- end}}
<section id="types">
<h2>All events by type</h2>
<table data-chart="types">
  <thead><tr><th>Type</th><th class="n">Events</th></tr></thead>
  <tbody>
  {{- range .ByType}}
  <tr data-key="{{.Key}}"><td>{{.Key}}</td><td class="n" data-calls>{{.Calls}}</td></tr>
  {{- end}}
  </tbody>
</table>
</section>
<section id="evidence">
<h2>Evidence</h2>
{{- if .FirstSeq}}<p>The range holds log entries from seq {{.FirstSeq}} to {{.LastSeq}}.</p>{{end}}
{{- with .TreeHead}}
<p>Newest signed tree head when generated ({{$.HeadTime}}): the first {{.TreeSize}} entries have root <code>{{.RootHash}}</code>, signed with key <code>{{.KeyID}}</code>. Check it with <code>consentgate audit witness</code> and the proofs of <code>GET /v1/audit/proof/inclusion</code>.</p>
<pre>{{.Note}}</pre>
{{- else}}
<p>No signed tree head yet.</p>
{{- end}}
</section>
</body>
</html>
`))
