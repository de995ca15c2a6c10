package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH             = 880, 440
	plotL, plotR, plotT, plotB = 70, 600, 40, 380
)

// series colours by database and endpoint.
var seriesColour = map[string]string{
	"sqlite/" + EpTransactions:   "#1f77b4",
	"sqlite/" + EpDeep:           "#17becf",
	"postgres/" + EpTransactions: "#d62728",
	"postgres/" + EpDeep:         "#ff7f0e",
	"sqlite/" + EpOpen:           "#9467bd",
	"postgres/" + EpOpen:         "#8c564b",
}

// SVG draws the transactions page's latency (p50 dashed, p99 solid)
// against the number of transactions in the database, x on a log scale,
// one line per database and page (first and deep) under closed-loop load,
// and the first page's p99 under the open loop's fixed rate. Plain SVG
// text: no library, no script.
func (r *Report) SVG() string {
	type point struct {
		x  int
		y  time.Duration
		ok bool
	}
	type series struct {
		name, colour string
		dashed       bool
		pts          []point
	}
	var all []series
	minX, maxX, maxY := math.MaxInt, 0, time.Duration(0)
	for _, db := range r.dbs() {
		for _, ep := range []string{EpTransactions, EpDeep, EpOpen} {
			for _, p99 := range []bool{true, false} {
				if ep == EpOpen && !p99 {
					continue // the open loop's p50 sits on the p99 at this scale
				}
				s := series{name: fmt.Sprintf("%s %s p50", db, ep), colour: seriesColour[db+"/"+ep], dashed: !p99}
				if p99 {
					s.name = fmt.Sprintf("%s %s p99", db, ep)
				}
				for _, n := range r.sizes(db) {
					m, ok := r.find(db, n, ep)
					y := m.P50
					if p99 {
						y = m.P99
					}
					s.pts = append(s.pts, point{n, y, ok})
					minX, maxX, maxY = min(minX, n), max(maxX, n), max(maxY, y)
				}
				if slices.ContainsFunc(s.pts, func(p point) bool { return p.ok }) {
					all = append(all, s)
				}
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">Transactions page latency vs data size (%d connections; open loop %d req/s)</text>`+"\n",
		plotL, r.Config.Conns, r.Config.Rate)
	if len(all) == 0 {
		b.WriteString(`<text x="70" y="200">no transactions measurements</text></svg>` + "\n")
		return b.String()
	}
	// x: whole decades around the sizes; y: a round ceiling above the worst.
	lo, hi := math.Floor(math.Log10(float64(minX))), math.Ceil(math.Log10(float64(maxX)))
	if hi == lo {
		hi = lo + 1
	}
	top := niceCeil(float64(maxY) / float64(time.Millisecond) * 1.1)
	px := func(n int) float64 { return plotL + (math.Log10(float64(n))-lo)/(hi-lo)*(plotR-plotL) }
	py := func(d time.Duration) float64 {
		return plotB - float64(d)/float64(time.Millisecond)/top*(plotB-plotT)
	}
	for dec := lo; dec <= hi; dec++ {
		x := px(int(math.Pow(10, dec)))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, plotT, x, plotB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, plotB+18, SizeLabel(int(math.Pow(10, dec))))
	}
	for i := 0; i <= 5; i++ {
		v := top * float64(i) / 5
		y := plotB - float64(i)/5*(plotB-plotT)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", plotL, y, plotR, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", plotL-6, y+4, trimFloat(v))
	}
	if t := float64(p99Target) / float64(time.Millisecond); t <= top {
		y := py(p99Target)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#2ca02c" stroke-dasharray="2,3"/>`+"\n", plotL, y, plotR, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#2ca02c">p99 target</text>`+"\n", plotR-4, y-4)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", plotL, plotT, plotR-plotL, plotB-plotT)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">transactions in the database (log scale)</text>`+"\n", (plotL+plotR)/2, plotB+38)
	fmt.Fprintf(&b, `<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">latency (ms)</text>`+"\n", (plotT+plotB)/2, (plotT+plotB)/2)
	for i, s := range all {
		var pts []string
		for _, p := range s.pts {
			if p.ok {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.x), py(p.y)))
			}
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6,4"`
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.colour, dash)
		for _, p := range pts {
			x, y, _ := strings.Cut(p, ",")
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", x, y, s.colour)
		}
		ly := plotT + 10 + i*20
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", plotR+15, ly, plotR+45, ly, s.colour, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", plotR+52, ly+4, s.name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
