package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/consentgate/consentgate/internal/apperr"
)

// HeaderInteractionID is the FAPI correlation header, echoed on every
// response and recorded in the logs (and the audit log).
const HeaderInteractionID = "x-fapi-interaction-id"

// maxInteractionID bounds an echoed interaction id: it goes into headers,
// logs and the audit log, so it must stay short and printable.
const maxInteractionID = 128

type interactionKey struct{}

// Middleware is the chain every request goes through, outermost first:
// interaction id, access log, security headers, panic recovery, request
// limits (limits.go). The access log sits outside the recovery so that a
// panic is logged as the 500 it became; the limits sit inside everything
// else so that a refusal carries an interaction id and is logged.
func Middleware(log *slog.Logger) []gin.HandlerFunc {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return []gin.HandlerFunc{interactionID, accessLog(log), securityHeaders, recoverPanics(log), limits}
}

// InteractionID returns the request's interaction id, or "" outside a
// request that went through Middleware. It accepts a *gin.Context too.
func InteractionID(ctx context.Context) string {
	if gc, ok := ctx.(*gin.Context); ok {
		// gin.Context.Value only falls back to the request's context when the
		// engine enables ContextWithFallback; do not depend on that.
		if gc.Request == nil {
			return ""
		}
		ctx = gc.Request.Context()
	}
	id, _ := ctx.Value(interactionKey{}).(string)
	return id
}

// interactionID adopts the client's x-fapi-interaction-id when it is sane
// and otherwise mints a UUID, so every response and log line has one.
func interactionID(c *gin.Context) {
	id := c.GetHeader(HeaderInteractionID)
	if !validInteractionID(id) {
		// Time-ordered (UUIDv7), like audit event ids: the audit log's
		// interaction_id index grows at its edge.
		id = uuid.Must(uuid.NewV7()).String()
	}
	c.Header(HeaderInteractionID, id)
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), interactionKey{}, id))
	c.Next()
}

// validInteractionID accepts 1 to 128 visible ASCII characters: FAPI asks
// for a UUID, but clients send their own trace ids; anything that could
// break a header or a log line (spaces, controls, non-ASCII) is replaced.
func validInteractionID(id string) bool {
	if id == "" || len(id) > maxInteractionID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// securityHeaders are sent on every response. API answers are per-token and
// must never sit in a shared or browser cache.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if p := c.Request.URL.Path; underPrefix(p, "/v1") || underPrefix(p, "/oauth2") || underPrefix(p, "/fdx") {
		h.Set("Cache-Control", "no-store")
	}
	c.Next()
}

func underPrefix(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// recoverPanics turns a panic into a 500 problem that says nothing of the
// panic; the value and the stack go to the log with the interaction id.
func recoverPanics(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v) // a deliberate abort: net/http drops the connection quietly
			}
			log.LogAttrs(c.Request.Context(), slog.LevelError, "panic serving request",
				slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())),
				slog.String("method", c.Request.Method), slog.String("path", c.Request.URL.Path),
				slog.String("interaction_id", InteractionID(c)))
			if c.Writer.Written() {
				c.Abort() // the response has started; nothing else can be said
				return
			}
			WriteProblem(c, apperr.Wrap(apperr.Internal, "panic", fmt.Errorf("panic: %v", v)))
		}()
		c.Next()
	}
}

// accessLog writes one line per request. The path is logged without its
// query: queries can carry tokens or personal data.
func accessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		method, path := c.Request.Method, c.Request.URL.Path
		c.Next()
		status := c.Writer.Status()
		attrs := []slog.Attr{
			slog.String("method", method),
			slog.String("path", path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.Int("bytes", max(c.Writer.Size(), 0)),
			slog.String("interaction_id", InteractionID(c)),
		}
		if last := c.Errors.Last(); last != nil {
			attrs = append(attrs, slog.String("error", last.Error()))
		}
		level := slog.LevelInfo
		if status >= http.StatusInternalServerError {
			level = slog.LevelError
		}
		log.LogAttrs(c.Request.Context(), level, "http request", attrs...)
	}
}
