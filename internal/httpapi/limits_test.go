package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// limitsEngine mounts the middleware chain in front of handlers that read
// their whole body and report what they saw.
func limitsEngine() *gin.Engine {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(Middleware(slog.New(slog.DiscardHandler))...)
	read := func(c *gin.Context) {
		b, err := io.ReadAll(c.Request.Body)
		if err != nil {
			c.String(http.StatusBadRequest, "read: %v", err)
			return
		}
		c.String(http.StatusOK, "%d %s %s", len(b), c.PostForm("a"), c.Query("q"))
	}
	for _, p := range []string{"/login", "/oauth2/token", "/v1/provider/transactions", "/v1/accounts"} {
		r.POST(p, read)
		r.GET(p, read)
	}
	return r
}

// TestLimits pins each refusal: its status, its format (OAuth error object
// under /oauth2, problem+json elsewhere) and its code.
func TestLimits(t *testing.T) {
	r := limitsEngine()
	form := "application/x-www-form-urlencoded"
	big := func(n int) string { return "a=" + strings.Repeat("x", n) }
	manyHeaders := func(req *http.Request) {
		for i := range MaxHeaderFields + 1 {
			req.Header.Add("X-H"+strconv.Itoa(i), "v")
		}
	}
	tests := []struct {
		name, method, path, ctype, body string
		mod                             func(*http.Request)
		status                          int
		code                            string // problem code, or OAuth error under /oauth2
	}{
		{"small form passes", "POST", "/login", form, "a=b", nil, 200, ""},
		{"form over 1 MiB", "POST", "/login", form, big(MaxBody), nil, 413, "payload_too_large"},
		{"OAuth form over 64 KiB", "POST", "/oauth2/token", form, big(MaxOAuthBody), nil, 413, "invalid_request"},
		{"provider batches are the handler's to limit", "POST", "/v1/provider/transactions", "application/json", strings.Repeat(" ", 2*MaxBody), nil, 200, ""},
		{"query over 4 KiB", "GET", "/v1/accounts?q=" + strings.Repeat("x", MaxQueryBytes), "", "", nil, 414, "invalid_request"},
		{"query over 4 KiB on OAuth", "GET", "/oauth2/token?q=" + strings.Repeat("x", MaxQueryBytes), "", "", nil, 414, "invalid_request"},
		{"too many header fields", "GET", "/v1/accounts", "", "", manyHeaders, 431, "invalid_request"},
		{"NUL in a query value", "GET", "/v1/accounts?q=a%00b", "", "", nil, 400, "invalid_request"},
		{"invalid UTF-8 in a query value", "GET", "/v1/accounts?q=%ff%fe", "", "", nil, 400, "invalid_request"},
		{"NUL in a query name", "GET", "/v1/accounts?a%00=1", "", "", nil, 400, "invalid_request"},
		{"malformed query escape", "GET", "/v1/accounts?q=%zz", "", "", nil, 400, "invalid_request"},
		{"NUL in a form value", "POST", "/login", form, "a=x%00y", nil, 400, "invalid_request"},
		{"invalid UTF-8 in an OAuth form value", "POST", "/oauth2/token", form, "client_id=%c3%28", nil, 400, "invalid_request"},
		{"malformed form escape", "POST", "/oauth2/token", form, "a=%zz", nil, 400, "invalid_request"},
		{"UTF-8 text passes", "POST", "/login", form, "a=" + url.QueryEscape("Zoë 🙂"), nil, 200, ""},
		{"NUL in a path", "GET", "/login%00", "", "", nil, 404, "not_found"},
		{"invalid UTF-8 in an OAuth path", "GET", "/oauth2/grants/%ff", "", "", nil, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			if tt.mod != nil {
				tt.mod(req)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == http.StatusOK {
				return
			}
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
				t.Fatalf("body is not JSON: %q", rec.Body)
			}
			ct := rec.Header().Get("Content-Type")
			if strings.HasPrefix(tt.path, "/oauth2") {
				if m["error"] != tt.code || m["error_description"] == "" || !strings.HasPrefix(ct, "application/json") {
					t.Fatalf("OAuth refusal: %s %s", ct, rec.Body)
				}
				return
			}
			if m["code"] != tt.code || m["status"] != float64(tt.status) || !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("problem: %s %s", ct, rec.Body)
			}
		})
	}
}

// TestLimitsChunkedBody: a body that does not declare its length is cut at
// the limit while the handler reads it.
func TestLimitsChunkedBody(t *testing.T) {
	r := limitsEngine()
	req := httptest.NewRequest("POST", "/v1/accounts", io.MultiReader(strings.NewReader(strings.Repeat("x", MaxBody+1))))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "request body too large") {
		t.Fatalf("chunked body over the limit: %d %s", rec.Code, rec.Body)
	}
}
