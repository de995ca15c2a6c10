package server

import (
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/consentgate/consentgate/internal/httpapi"
)

// metrics is the server's Prometheus registry: one per server, so tests can
// run several servers in one process.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	refusals *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// servedAgain counts data calls answered from a remembered token state
	// that changed before their audit event committed (httpapi.Deps.ServedAgain).
	servedAgain prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentgate_http_requests_total",
			Help: "HTTP requests by route template, method and status.",
		}, []string{"route", "method", "status"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentgate_refusals_total",
			Help: "Data, audit and provider API calls refused, by stable error code (purpose_prohibited, access_exceeded, …).",
		}, []string{"code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "consentgate_http_request_duration_seconds",
			Help:    "HTTP request latency by route template.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
		servedAgain: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "consentgate_data_calls_served_again_total",
			Help: "Data calls answered from the token state the node read last, which had changed (a revocation, a suspension, a grant change) before the call's audit event committed: withheld and served again from fresh reads.",
		}),
	}
	m.reg.MustRegister(m.requests, m.refusals, m.duration, m.servedAgain,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// middleware records every request under its route template (never the raw
// path: ids in paths would explode the label set).
func (m *metrics) middleware(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
	if strings.HasPrefix(route, "/v1/") || strings.HasPrefix(route, "/fdx/") {
		if code := httpapi.RefusalCode(c); code != "" {
			m.refusals.WithLabelValues(code).Inc()
		}
	}
	m.duration.WithLabelValues(route, c.Request.Method).Observe(time.Since(start).Seconds())
}

func (m *metrics) handler() gin.HandlerFunc {
	return gin.WrapH(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
}
