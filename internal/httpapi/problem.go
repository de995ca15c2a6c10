package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/apperr"
)

// ProblemTypeBase prefixes the stable problem type URI of every code
// ("https://consentgate.dev/problems/account_not_found"); openapi.yaml
// documents each one.
const ProblemTypeBase = "https://consentgate.dev/problems/"

// Problem is an RFC 9457 problem document with consentgate's extensions.
type Problem struct {
	Type          string `json:"type"`
	Title         string `json:"title"`
	Status        int    `json:"status"`
	Detail        string `json:"detail"`
	Code          string `json:"code"`
	InteractionID string `json:"interaction_id,omitempty"`
}

// serverFault is the only detail a 5xx ever carries: the cause stays in the
// log, findable by the interaction id.
const serverFault = "The server could not complete the request. Retry later; if it keeps failing, report the interaction_id."

// WriteProblem answers with err as application/problem+json and stops the
// handler chain. An *apperr.E gives the code, status and public message; any
// other error is a 500. The private cause is attached to the gin context,
// where the access log of Middleware records it.
func WriteProblem(c *gin.Context, err error) {
	e := apperr.As(err)
	status := apperr.Status(e.Code)
	detail := e.Msg
	if status >= http.StatusInternalServerError {
		detail = serverFault
	}
	if e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if err != nil {
		_ = c.Error(err) // returns err; recorded for the access log
	}
	writeProblem(c, Problem{
		Type: ProblemTypeBase + string(e.Code), Title: apperr.Title(e.Code), Status: status,
		Detail: detail, Code: string(e.Code), InteractionID: InteractionID(c),
	})
}

// writeProblem answers with p in the dialect of the route group: the
// group's renderer (renderWith) when it set one, problem+json otherwise.
// Every refusal of the gate reaches the client through here.
func writeProblem(c *gin.Context, p Problem) {
	if r, ok := c.Get(rendererKey); ok {
		r.(errorRenderer)(c, p)
		c.Abort()
		return
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: strings and an int
		body = []byte(`{"type":"about:blank","title":"Internal server error","status":500}`)
	}
	c.Data(p.Status, "application/problem+json", body)
	c.Abort()
}
