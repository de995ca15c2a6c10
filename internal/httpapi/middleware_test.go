package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/consentgate/consentgate/internal/apperr"
)

// middlewareEngine serves test routes behind Middleware; /echo answers the
// interaction id its handler sees in the request context.
func middlewareEngine(logs *syncBuffer) *gin.Engine {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(Middleware(slog.New(slog.NewJSONHandler(logs, nil)))...)
	echo := func(c *gin.Context) { c.String(http.StatusOK, InteractionID(c.Request.Context())) }
	r.GET("/echo", echo)
	r.GET("/v1/echo", echo)
	r.GET("/v1x", echo)
	r.POST("/oauth2/token", echo)
	r.GET("/panic", func(c *gin.Context) { panic("secret-panic-value") })
	r.GET("/problem", func(c *gin.Context) {
		switch c.Query("kind") {
		case "limited":
			WriteProblem(c, &apperr.E{Code: apperr.RateLimited, Msg: "Slow down.", RetryAfter: 7})
		case "audit":
			WriteProblem(c, apperr.Wrap(apperr.AuditUnavailable, "cannot append: disk full at /var/lib/pg", errors.New("pq: disk full")))
		case "plain":
			WriteProblem(c, errors.New("sql: connection string postgres://admin:hunter2@db"))
		default:
			WriteProblem(c, apperr.Wrap(apperr.InvalidRequest, "Fix the thing.", errors.New("private cause")))
		}
	})
	return r
}

func serve(r *gin.Engine, method, target string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec
}

func TestInteractionID(t *testing.T) {
	r := middlewareEngine(&syncBuffer{})
	for _, tt := range []struct {
		name, sent string
		echoed     bool
	}{
		{"a UUID is echoed", "3f1c2b9e-8d4a-4c1e-9b2f-0a1b2c3d4e5f", true},
		{"any visible ASCII up to 128 is echoed", "trace:" + strings.Repeat("x", 122), true},
		{"absent", "", false},
		{"129 characters", strings.Repeat("x", 129), false},
		{"space inside", "a b", false},
		{"control character", "a\x01b", false},
		{"non-ASCII", "ïd", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var rec *httptest.ResponseRecorder
			if tt.sent == "" {
				rec = serve(r, "GET", "/echo")
			} else {
				rec = serve(r, "GET", "/echo", HeaderInteractionID, tt.sent)
			}
			got := rec.Header().Get(HeaderInteractionID)
			if got != rec.Body.String() {
				t.Errorf("header %q but the handler's context has %q", got, rec.Body.String())
			}
			if tt.echoed {
				if got != tt.sent {
					t.Errorf("sent %q, got back %q", tt.sent, got)
				}
				return
			}
			if _, err := uuid.Parse(got); err != nil || got == tt.sent {
				t.Errorf("an unusable id %q must be replaced by a new UUID, got %q", tt.sent, got)
			}
		})
	}
	a := serve(r, "GET", "/echo").Header().Get(HeaderInteractionID)
	b := serve(r, "GET", "/echo").Header().Get(HeaderInteractionID)
	if a == b {
		t.Error("generated interaction ids repeat")
	}
}

func TestSecurityHeaders(t *testing.T) {
	r := middlewareEngine(&syncBuffer{})
	for _, tt := range []struct {
		method, path string
		noStore      bool
	}{
		{"GET", "/echo", false},
		{"GET", "/v1/echo", true},
		{"GET", "/v1x", false}, // a prefix of the path, not of a segment
		{"POST", "/oauth2/token", true},
		{"GET", "/v1/unknown-route", true},
	} {
		rec := serve(r, tt.method, tt.path)
		h := rec.Header()
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s %s: security headers missing: %v", tt.method, tt.path, h)
		}
		if got := h.Get("Cache-Control") == "no-store"; got != tt.noStore {
			t.Errorf("%s %s: Cache-Control %q, want no-store: %v", tt.method, tt.path, h.Get("Cache-Control"), tt.noStore)
		}
	}
}

func TestPanicRecovery(t *testing.T) {
	logs := &syncBuffer{}
	r := middlewareEngine(logs)
	rec := serve(r, "GET", "/panic", HeaderInteractionID, "panic-trace-1")
	p := problem(t, rec, http.StatusInternalServerError, "internal_error")
	if strings.Contains(rec.Body.String(), "secret-panic-value") || strings.Contains(rec.Body.String(), "goroutine") || p.Detail != serverFault {
		t.Errorf("the 500 body reveals the panic: %s", rec.Body)
	}
	var panicLine, accessLine map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		switch m["msg"] {
		case "panic serving request":
			panicLine = m
		case "http request":
			accessLine = m
		}
	}
	if panicLine == nil || panicLine["panic"] != "secret-panic-value" || panicLine["interaction_id"] != "panic-trace-1" ||
		!strings.Contains(panicLine["stack"].(string), "middleware_test.go") {
		t.Errorf("panic log line %v", panicLine)
	}
	if accessLine == nil || accessLine["status"] != float64(500) || accessLine["level"] != "ERROR" {
		t.Errorf("the access log does not show the panic as a 500: %v", accessLine)
	}
	// The server keeps serving.
	if rec := serve(r, "GET", "/echo"); rec.Code != http.StatusOK {
		t.Errorf("after a panic: %d", rec.Code)
	}
}

func TestAccessLog(t *testing.T) {
	logs := &syncBuffer{}
	r := middlewareEngine(logs)
	serve(r, "GET", "/echo?access_token=secret-token&x=1", HeaderInteractionID, "trace-42")
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &m); err != nil {
		t.Fatalf("one JSON line expected: %v\n%s", err, logs)
	}
	if m["msg"] != "http request" || m["method"] != "GET" || m["path"] != "/echo" || m["status"] != float64(200) ||
		m["interaction_id"] != "trace-42" || m["duration_ms"] == nil {
		t.Errorf("access log line %v", m)
	}
	if strings.Contains(logs.String(), "secret-token") {
		t.Error("the access log contains the query string")
	}
}

func TestWriteProblem(t *testing.T) {
	logs := &syncBuffer{}
	r := middlewareEngine(logs)

	rec := serve(r, "GET", "/problem")
	p := problem(t, rec, http.StatusBadRequest, "invalid_request")
	if p.Detail != "Fix the thing." || strings.Contains(rec.Body.String(), "private cause") {
		t.Errorf("4xx problem %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "private cause") {
		t.Error("the private cause is not in the access log")
	}

	rec = serve(r, "GET", "/problem?kind=limited")
	problem(t, rec, http.StatusTooManyRequests, "rate_limited")
	if rec.Header().Get("Retry-After") != "7" {
		t.Errorf("Retry-After %q, want 7", rec.Header().Get("Retry-After"))
	}

	// 5xx: the public message is replaced too, it may name internals.
	rec = serve(r, "GET", "/problem?kind=audit")
	p = problem(t, rec, http.StatusServiceUnavailable, "audit_unavailable")
	if p.Detail != serverFault || strings.Contains(rec.Body.String(), "disk") {
		t.Errorf("5xx problem leaks: %s", rec.Body)
	}

	rec = serve(r, "GET", "/problem?kind=plain")
	problem(t, rec, http.StatusInternalServerError, "internal_error")
	if strings.Contains(rec.Body.String(), "hunter2") {
		t.Errorf("a plain error leaks: %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "hunter2") || !strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Error("the cause of a 500 must be logged at error level")
	}
}
