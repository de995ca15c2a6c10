package oauth

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"
)

// singleParams guards the client-facing endpoints (PAR, token,
// introspection, revocation): it reads the form once, bounded, and refuses
// a request that repeats a parameter, in the query or the body or across
// both. RFC 6749 §3.1 says parameters "MUST NOT be included more than
// once"; fosite reads only the first value, so without this check the
// value it validates and the value a later reader sees could differ. It
// also refuses parameter names and values with a NUL byte or invalid UTF-8,
// which no legitimate client sends and which would otherwise reach the
// database and the logs.
func (p *Provider) singleParams(c *gin.Context) {
	r := limitBody(c)
	if err := parseParams(r); err != nil {
		p.oauth.WriteAccessError(r.Context(), c.Writer, nil, err)
		c.Abort()
		return
	}
	if err := checkParams(r.Form); err != nil {
		p.oauth.WriteAccessError(r.Context(), c.Writer, nil, err)
		c.Abort()
		return
	}
	c.Next()
}

// parseParams fills r.Form as fosite will (an urlencoded or a multipart
// body, plus the query), so the check sees every parameter fosite reads.
// ParseForm comes first: ParseMultipartForm swallows its errors when the
// body is not multipart.
func parseParams(r *http.Request) error {
	err := r.ParseForm()
	if err == nil {
		if err = r.ParseMultipartForm(maxFormBytes); errors.Is(err, http.ErrNotMultipart) {
			err = nil
		}
	}
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mbe):
		return &fosite.RFC6749Error{ErrorField: "invalid_request", CodeField: http.StatusRequestEntityTooLarge,
			DescriptionField: fmt.Sprintf("The request body is larger than %d bytes.", maxFormBytes)}
	}
	return fosite.ErrInvalidRequest.WithHint("The request body could not be parsed as a form.").WithWrap(err)
}

// checkParams applies RFC 6749 §3.1 and the byte rules to a parsed form.
// Names are checked in sorted order, so the answer is the same every time.
func checkParams(form url.Values) error {
	names := make([]string, 0, len(form))
	for name := range form {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		vals := form[name]
		if !cleanParam(name) {
			return fosite.ErrInvalidRequest.WithHint("A parameter name contains a NUL byte or invalid UTF-8.")
		}
		if len(vals) > 1 {
			return fosite.ErrInvalidRequest.WithHintf("The parameter %q is included more than once (RFC 6749 §3.1).", name)
		}
		for _, v := range vals {
			if !cleanParam(v) {
				return fosite.ErrInvalidRequest.WithHintf("The parameter %q contains a NUL byte or invalid UTF-8.", name)
			}
		}
	}
	return nil
}

// cleanParam reports whether s is valid UTF-8 without NUL bytes.
func cleanParam(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// documentedErrors are the error codes the OAuth endpoints answer with
// (openapi.yaml's OAuthError): RFC 6749's, RFC 9449's, and the two of
// server trouble.
var documentedErrors = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"unsupported_grant_type": true, "invalid_scope": true, "unsupported_response_type": true, "access_denied": true,
	"server_error": true, "temporarily_unavailable": true, ErrCodeInvalidDPoPProof: true, ErrCodeUseDPoPNonce: true,
}

// answer is the error a client-facing endpoint sends for err: a database
// failure is temporarily_unavailable (unavailable), and one of fosite's own
// codes that no RFC registers (invalid_state, insufficient_entropy,
// request_unauthorized, …) becomes invalid_request with the same
// description, so clients only ever meet the codes the API documents.
//
// The specific sentence (the hint: ours, or fosite's) is the whole
// error_description, without the generic RFC sentence fosite puts before it:
// a developer reads what to fix first.
func answer(err error) error {
	err = unavailable(err)
	re := fosite.ErrorToRFC6749Error(err)
	if !documentedErrors[re.ErrorField] {
		return leadWithHint(fosite.ErrInvalidRequest.WithHint(re.GetDescription()).WithWrap(err))
	}
	return leadWithHint(re)
}

// leadWithHint makes an error's hint its description, dropping the generic
// text of its code.
func leadWithHint(re *fosite.RFC6749Error) *fosite.RFC6749Error {
	if re.HintField == "" {
		return re
	}
	return re.WithDescription(re.HintField).WithHint("")
}

// checkFormBody refuses a POST whose body is not a form (RFC 6749 §3.2,
// RFC 9126 §2.1): fosite would read an empty form and complain about
// whichever parameter it checks first, which misleads.
func checkFormBody(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == "application/x-www-form-urlencoded":
		return nil
	case ct == "" && r.ContentLength == 0:
		return fosite.ErrInvalidRequest.WithHint("The request body is empty: send the parameters in an application/x-www-form-urlencoded body (RFC 6749 §3.2, RFC 9126 §2.1).")
	case ct == "":
		return fosite.ErrInvalidRequest.WithHint("The request has no Content-Type: send the parameters in an application/x-www-form-urlencoded body (RFC 6749 §3.2, RFC 9126 §2.1).")
	}
	return fosite.ErrInvalidRequest.WithHintf("The request body is %s, not a form: send the parameters in an application/x-www-form-urlencoded body instead (RFC 6749 §3.2, RFC 9126 §2.1).", ct)
}
