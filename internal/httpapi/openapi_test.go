package httpapi

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/purpose"
)

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// Every public endpoint of SPEC.md is described.
func TestOpenAPIDescribesEveryEndpoint(t *testing.T) {
	doc := loadSpec(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q, want 3.0.3", doc.OpenAPI)
	}
	for _, ep := range []string{
		"GET /.well-known/oauth-authorization-server", "GET /jwks",
		"POST /oauth2/par", "GET /oauth2/authorize", "POST /oauth2/token", "POST /oauth2/introspect", "POST /oauth2/revoke",
		"GET /oauth2/grants/{grant_id}", "DELETE /oauth2/grants/{grant_id}",
		"GET /v1/accounts", "GET /v1/accounts/{account_id}", "GET /v1/accounts/{account_id}/balances",
		"GET /v1/accounts/{account_id}/transactions",
		"GET /v1/audit/events", "GET /v1/audit/verify",
		"GET /healthz", "GET /readyz", "GET /metrics",
		"GET /login", "POST /login", "POST /logout", "GET /consent", "POST /consent",
		"GET /dashboard", "GET /dashboard/consents/{grant_id}", "POST /dashboard/consents/{grant_id}/revoke",
	} {
		method, path, _ := strings.Cut(ep, " ")
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("openapi.yaml does not describe %s", ep)
			continue
		}
		if op := item.GetOperation(method); op.Summary == "" || op.Responses.Len() == 0 {
			t.Errorf("%s has no summary or no responses", ep)
		}
	}
}

// Every route RegisterData mounts is in the document, with the same
// method.
func TestOpenAPIMatchesDataRoutes(t *testing.T) {
	doc := loadSpec(t)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	RegisterData(r, Deps{Audit: recorderFunc(func(_ context.Context, ev audit.Event) (audit.Event, error) { return ev, nil }),
		Usage: &memUsage{n: map[string]int{}}})
	param := regexp.MustCompile(`:([a-z_]+)`)
	routes := r.Routes()
	if len(routes) != 4 {
		t.Errorf("RegisterData mounted %d routes, the test knows 4", len(routes))
	}
	for _, rt := range routes {
		path := param.ReplaceAllString(rt.Path, "{$1}")
		if item := doc.Paths.Value(path); item == nil || item.GetOperation(rt.Method) == nil {
			t.Errorf("route %s %s is not in openapi.yaml", rt.Method, path)
		}
	}
}

// The purpose enum is the policy table, and the prohibited list is spelled
// out for developers.
func TestOpenAPIPurposes(t *testing.T) {
	doc := loadSpec(t)
	schema := doc.Components.Schemas["Purpose"].Value
	var enum []string
	for _, v := range schema.Enum {
		enum = append(enum, v.(string))
	}
	if want := purpose.Default().Codes(); !slices.Equal(enum, want) {
		t.Errorf("Purpose enum %v, want the policy table %v", enum, want)
	}
	for _, p := range purpose.Prohibited {
		if !strings.Contains(schema.Description, "`"+p+"`") {
			t.Errorf("Purpose description does not name the prohibited purpose %s", p)
		}
	}
}

// Every problem code the API can answer is documented.
func TestOpenAPIProblemCodes(t *testing.T) {
	doc := loadSpec(t)
	var enum []string
	for _, v := range doc.Components.Schemas["ProblemCode"].Value.Enum {
		enum = append(enum, v.(string))
	}
	codes := []string{"invalid_token", "insufficient_scope", "invalid_dpop_proof", "use_dpop_nonce"}
	for _, c := range []apperr.Code{
		apperr.AccountNotFound, apperr.PurposeProhibited, apperr.PurposeNotConsented, apperr.HistoryWindowExceeded,
		apperr.InvalidCursor, apperr.InvalidRequest, apperr.AccessExceeded, apperr.RateLimited, apperr.AuditUnavailable,
		apperr.NotFound, apperr.Conflict, apperr.PayloadTooLarge, apperr.Unavailable, apperr.Internal,
		apperr.InvalidRecords, apperr.ProviderNotRegistered, apperr.MethodNotAllowed,
	} {
		codes = append(codes, string(c))
	}
	for _, c := range codes {
		if !slices.Contains(enum, c) {
			t.Errorf("problem code %s is not in the ProblemCode enum", c)
		}
	}
	if len(enum) != len(codes) {
		t.Errorf("ProblemCode enum has %d codes, the API answers %d: %v", len(enum), len(codes), enum)
	}
}
