package httpapi

import (
	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/apperr"
)

// RegisterFallbacks answers what no route serves as problem+json, like every
// other API error, instead of gin's text/plain "404 page not found": 404
// not_found for an unknown path, 405 method_not_allowed with the Allow
// header (RFC 9110 §15.5.6) for a known path asked with another method.
func RegisterFallbacks(r *gin.Engine) {
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		WriteProblem(c, apperr.New(apperr.NotFound,
			"No endpoint has the path "+c.Request.URL.Path+"; openapi.yaml lists every path this server serves."))
	})
	r.NoMethod(func(c *gin.Context) {
		// gin has set Allow to the methods the path is registered for.
		allow := c.Writer.Header().Get("Allow")
		WriteProblem(c, apperr.New(apperr.MethodNotAllowed,
			c.Request.Method+" is not served at "+c.Request.URL.Path+"; use "+allow+"."))
	})
}
