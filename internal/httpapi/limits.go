package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/apperr"
)

// Request limits. http.Server bounds the request line and headers together
// (MaxHeaderBytes) and the time to read them (ReadHeaderTimeout); these
// bound what it does not: the body per route class, the query string alone,
// the number of header fields, and the bytes a parameter may hold.
const (
	// MaxOAuthBody bounds the forms of the OAuth endpoints (PAR, token,
	// introspection, revocation): a few parameters and a client assertion.
	MaxOAuthBody = 64 << 10
	// MaxBody bounds every other body except provider batches, whose
	// handler applies its own, larger limit (ingest.DefaultMaxBodyBytes).
	MaxBody = 1 << 20
	// MaxQueryBytes bounds the raw query string: the longest legitimate
	// one (a transactions page with a cursor) is a few hundred bytes.
	MaxQueryBytes = 4 << 10
	// MaxHeaderFields bounds the number of header field lines.
	MaxHeaderFields = 100
)

// limits refuses oversized and malformed requests before any handler reads
// them: too many header fields (431), a query string over MaxQueryBytes
// (414), a path with a NUL byte or invalid UTF-8 (404), a declared body over its route's limit (413; bodies that do not
// declare their length are cut at the limit as they are read), and a query
// or urlencoded form that does not parse or carries a NUL byte or invalid
// UTF-8 in a name or value (400). Refusals on /oauth2 are RFC 6749 error
// objects, elsewhere problem+json. A parsed form stays parsed for the
// handler.
func limits(c *gin.Context) {
	r := c.Request
	fields := 0
	for _, v := range r.Header {
		fields += len(v)
	}
	if fields > MaxHeaderFields {
		refuse(c, http.StatusRequestHeaderFieldsTooLarge, apperr.InvalidRequest,
			fmt.Sprintf("The request has %d header fields; at most %d are accepted.", fields, MaxHeaderFields))
		return
	}
	if len(r.URL.RawQuery) > MaxQueryBytes {
		refuse(c, http.StatusRequestURITooLong, apperr.InvalidRequest,
			fmt.Sprintf("The query string is longer than %d bytes.", MaxQueryBytes))
		return
	}
	// A path segment with such bytes names nothing, and PostgreSQL refuses
	// them as text: 404 before a handler queries with it. Account paths are
	// the data API's: its gate answers account_not_found, and audits it.
	if !clean(r.URL.Path) && !underPrefix(r.URL.Path, "/v1/accounts") {
		refuse(c, http.StatusNotFound, apperr.NotFound, "Nothing is found at a path with a NUL byte or invalid UTF-8.")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		refuse(c, http.StatusBadRequest, apperr.InvalidRequest, "The query string is malformed.")
		return
	}
	if name, ok := cleanValues(q); !ok {
		refuse(c, http.StatusBadRequest, apperr.InvalidRequest, badParam("query", name))
		return
	}
	limit := bodyLimit(r.URL.Path)
	if limit == 0 {
		c.Next()
		return
	}
	if r.ContentLength > limit {
		c.Header("Connection", "close") // do not read the rest of it
		refuse(c, http.StatusRequestEntityTooLarge, apperr.PayloadTooLarge,
			fmt.Sprintf("The request body is larger than %d bytes.", limit))
		return
	}
	r.Body = http.MaxBytesReader(c.Writer, r.Body, limit)
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				refuse(c, http.StatusRequestEntityTooLarge, apperr.PayloadTooLarge,
					fmt.Sprintf("The request body is larger than %d bytes.", limit))
				return
			}
			refuse(c, http.StatusBadRequest, apperr.InvalidRequest, "The form body is malformed.")
			return
		}
		if name, ok := cleanValues(r.PostForm); !ok {
			refuse(c, http.StatusBadRequest, apperr.InvalidRequest, badParam("form", name))
			return
		}
	}
	c.Next()
}

// bodyLimit is the body limit of a path; 0 leaves it to the handler.
func bodyLimit(path string) int64 {
	switch {
	case underPrefix(path, "/oauth2"):
		return MaxOAuthBody
	case underPrefix(path, "/v1/provider"):
		return 0
	}
	return MaxBody
}

// cleanValues reports whether every name and value is valid UTF-8 without
// NUL bytes; when not, it returns the offending parameter's name (quoted,
// since it may itself be the bad one).
func cleanValues(v url.Values) (string, bool) {
	for name, vals := range v {
		if !clean(name) {
			return fmt.Sprintf("%q", name), false
		}
		for _, s := range vals {
			if !clean(s) {
				return fmt.Sprintf("%q", name), false
			}
		}
	}
	return "", true
}

func clean(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

func badParam(where, name string) string {
	return fmt.Sprintf("The %s parameter %s contains a NUL byte or invalid UTF-8.", where, name)
}

// refuse answers in the style of the endpoint: an RFC 6749 §5.2 error
// object under /oauth2 (invalid_request, or not_found as the grant
// endpoints say it), problem+json elsewhere.
func refuse(c *gin.Context, status int, code apperr.Code, detail string) {
	if underPrefix(c.Request.URL.Path, "/oauth2") {
		oauthCode := "invalid_request"
		if code == apperr.NotFound {
			oauthCode = "not_found"
		}
		body, _ := json.Marshal(map[string]string{"error": oauthCode, "error_description": detail})
		c.Header("Cache-Control", "no-store")
		c.Data(status, "application/json;charset=UTF-8", body)
		c.Abort()
		return
	}
	_ = c.Error(apperr.New(code, detail))
	writeProblem(c, Problem{
		Type: ProblemTypeBase + string(code), Title: apperr.Title(code), Status: status,
		Detail: detail, Code: string(code), InteractionID: InteractionID(c),
	})
}
