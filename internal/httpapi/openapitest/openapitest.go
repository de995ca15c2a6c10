// Package openapitest checks HTTP responses against openapi.yaml, so that the
// published contract and the server cannot drift apart: a response whose
// route, status, headers or body the document does not describe fails the
// test. It is a test helper (it imports testing); production code must
// never import it.
package openapitest

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// V validates responses against one OpenAPI document. It is safe for
// concurrent use.
type V struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	cacheMu sync.Mutex
	cache   = map[string]*V{} // by absolute path: loading the document is the slow part
)

func init() {
	// NDJSON exports are validated as text; kin-openapi has no decoder for it.
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.PlainBodyDecoder)
}

// Validator loads and validates the OpenAPI document at specPath (failing
// t if it is invalid) and returns a validator for responses. The document's
// servers are replaced by "/" so that requests to any host and port match.
func Validator(t testing.TB, specPath string) *V {
	t.Helper()
	abs, err := filepath.Abs(specPath)
	if err != nil {
		t.Fatalf("openapitest: %v", err)
	}
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if v := cache[abs]; v != nil {
		return v
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(abs)
	if err != nil {
		t.Fatalf("openapitest: load %s: %v", abs, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapitest: %s is not a valid OpenAPI document: %v", abs, err)
	}
	doc.Servers = openapi3.Servers{{URL: "/"}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapitest: routes of %s: %v", abs, err)
	}
	v := &V{doc: doc, router: router}
	cache[abs] = v
	return v
}

// Doc returns the loaded document.
func (v *V) Doc() *openapi3.T { return v.doc }

// Check fails t unless the document has an operation for req and describes
// this response to it: the status (undocumented statuses fail), the
// documented headers and the body for its content type.
func (v *V) Check(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		t.Errorf("openapitest: %s %s: no such operation in the document: %v", req.Method, req.URL.Path, err)
		return
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route, Options: opts,
		},
		Status:  status,
		Header:  header,
		Options: opts,
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		t.Errorf("openapitest: %s %s → %d does not match the document: %v\nbody: %.2000s",
			req.Method, req.URL.Path, status, err, body)
	}
}

// CheckResponse is Check for a client-side response: resp's status and
// headers with the body already read from it.
func (v *V) CheckResponse(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	v.Check(t, req, resp.StatusCode, resp.Header, body)
}

// ReadAndCheck reads and closes resp's body, checks the response and
// returns the body.
func (v *V) ReadAndCheck(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("openapitest: reading the response body: %v", err)
	}
	v.Check(t, resp.Request, resp.StatusCode, resp.Header, body)
	return body
}
