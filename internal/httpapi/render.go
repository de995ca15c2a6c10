package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/apperr"
)

// One gate, several dialects: the gate's steps (authenticate, decide,
// account) and the audit step answer every refusal through writeProblem,
// which renders it with the renderer the route group chose (renderWith),
// or as problem+json when it chose none (/v1). The refusal's consentgate
// code stays the audit reason whatever the dialect: the renderers only
// shape the body. RFC 6750 challenges (WWW-Authenticate) are set before
// the body and stay the same in every dialect.

const rendererKey = "consentgate.renderer"

// errorRenderer writes the body of refusal p (status and headers other
// than Content-Type already decided).
type errorRenderer func(c *gin.Context, p Problem)

// renderWith makes the route group answer refusals with r.
func renderWith(r errorRenderer) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Set(rendererKey, r)
		c.Next()
	}
}

// FDXError is the FDX error entity: an FDX code, a message an end user may
// be shown, and a debugMessage for developers, which names consentgate's
// own code first ("purpose_not_consented: ...").
type FDXError struct {
	Code         int    `json:"code"`
	Message      string `json:"message"`
	DebugMessage string `json:"debugMessage,omitempty"`
}

// fdxCodes maps consentgate codes to FDX error codes and messages. FDX
// groups them: 5xx the provider's systems, 6xx the customer, 7xx the
// account or the request about it.
var fdxCodes = map[string]FDXError{
	string(apperr.AccountNotFound):         {Code: 701, Message: "Account not found"},
	string(apperr.HistoryWindowExceeded):   {Code: 703, Message: "Invalid date range"},
	string(apperr.InvalidRequest):          {Code: 703, Message: "Invalid input"},
	string(apperr.InvalidCursor):           {Code: 703, Message: "Invalid input"},
	string(apperr.AccountTypeNotSupported): {Code: 704, Message: "Account type not supported"},
	string(apperr.NotFound):                {Code: 601, Message: "Data not found"},
	string(apperr.PurposeProhibited):       {Code: 602, Message: "Customer not authorized"},
	string(apperr.PurposeNotConsented):     {Code: 602, Message: "Customer not authorized"},
	string(apperr.AccessExceeded):          {Code: 602, Message: "Customer not authorized"},
	string(apperr.RateLimited):             {Code: 602, Message: "Customer not authorized"},
	"invalid_token":                        {Code: 602, Message: "Customer not authorized"},
	"insufficient_scope":                   {Code: 602, Message: "Customer not authorized"},
	"invalid_dpop_proof":                   {Code: 602, Message: "Customer not authorized"},
	"use_dpop_nonce":                       {Code: 602, Message: "Customer not authorized"},
	string(apperr.AuditUnavailable):        {Code: 501, Message: "Subsystem unavailable"},
	string(apperr.Unavailable):             {Code: 501, Message: "Subsystem unavailable"},
}

// writeFDXError renders a refusal as an FDX error entity.
func writeFDXError(c *gin.Context, p Problem) {
	e, ok := fdxCodes[p.Code]
	if !ok {
		e = FDXError{Code: 500, Message: "Internal server error"}
		if p.Status < http.StatusInternalServerError {
			e = FDXError{Code: 703, Message: "Invalid input"}
		}
	}
	e.DebugMessage = p.Code + ": " + p.Detail
	if p.InteractionID != "" {
		e.DebugMessage += " (x-fapi-interaction-id " + p.InteractionID + ")"
	}
	body, err := json.Marshal(e)
	if err != nil { // cannot happen: strings and an int
		body = []byte(`{"code":500,"message":"Internal server error"}`)
	}
	c.Data(p.Status, "application/json", body)
}
