package httpapi

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/purpose"
	"github.com/consentgate/consentgate/internal/store"
)

// Reason of an allowed data.access event; refusals carry their error code.
const reasonOK = "ok"

// recordAccess is the first step of every data route ("no audit, no
// data", SPEC §6). The rest of the chain answers into a buffer; then the
// call's data.access event is recorded with the status and code that answer
// carries, and only once that event is committed does the answer leave.
//
// If the event cannot be recorded the caller gets 503 audit_unavailable
// instead, and no data. Refusals are held back the same way (fail closed):
// every answer a client sees, 200 or 4xx, has its event in the log.
//
// A call the token check answered from the token state its node read last
// (canDefer, store.Deferred) has its event committed under the check of
// that state; if the state changed, the answer is dropped with nothing
// written, and the call is served again from fresh reads (serveAgain).
func (h *dataHandler) recordAccess(c *gin.Context) {
	orig := c.Writer
	// The headers before the chain ran: restored when its answer is replaced,
	// so no WWW-Authenticate or Retry-After of the withheld answer survives.
	before := orig.Header().Clone()
	held := &heldResponse{ResponseWriter: orig, status: http.StatusOK, body: heldBodies.Get().(*bytes.Buffer)}
	c.Writer = held
	var deferred *store.Deferred
	if h.canDefer(c) {
		var ctx context.Context
		ctx, deferred = store.WithDeferral(c.Request.Context())
		c.Request = c.Request.WithContext(ctx)
	}
	defer func() {
		c.Writer = orig
		if v := recover(); v != nil {
			// The recovery middleware outside turns the panic into a 500
			// without data; the log still says the call was made and failed.
			ev := h.accessEvent(c, http.StatusInternalServerError, string(apperr.Internal))
			if _, err := h.audit.Record(c.Request.Context(), ev); err != nil {
				h.log.LogAttrs(c.Request.Context(), slog.LevelError, "audit event of a failed data call not recorded",
					slog.String("interaction_id", ev.InteractionID), slog.String("err", err.Error()))
			}
			panic(v)
		}
	}()

	c.Next()

	c.Writer = orig
	ev := h.accessEvent(c, held.status, refusalReason(c, held.status))
	_, err := h.record(c.Request.Context(), ev, deferred.Check())
	if errors.Is(err, audit.ErrPrecondition) {
		// The token's state this node answered from (store.Deferred) has
		// changed since: nothing was written and the answer is withheld.
		// The call is served again from fresh reads, and that answer and
		// its event are the call's.
		restoreHeader(orig, before)
		held.reset()
		h.serveAgain(c, held)
		if h.servedAgain != nil {
			h.servedAgain()
		}
		ev = h.accessEvent(c, held.status, refusalReason(c, held.status))
		_, err = h.audit.Record(c.Request.Context(), ev)
	}
	if err != nil {
		restoreHeader(orig, before)
		if !errors.Is(err, audit.ErrUnavailable) {
			err = apperr.Wrap(apperr.AuditUnavailable, "The audit log could not record this request, so no data was returned.", err)
		}
		held.release()
		WriteProblem(c, err)
		return
	}
	orig.WriteHeader(held.status)
	if held.written {
		// The whole body is known: a client can tell a cut-off answer.
		orig.Header().Set("Content-Length", strconv.Itoa(held.body.Len()))
		orig.WriteHeaderNow()
		if _, err := orig.Write(held.body.Bytes()); err != nil {
			_ = c.Error(err) // the client went away; recorded for the access log
		}
	}
	held.release()
}

// restoreHeader makes w's header what it was before the chain ran.
func restoreHeader(w http.ResponseWriter, before http.Header) {
	header := w.Header()
	clear(header)
	for k, v := range before {
		header[k] = v
	}
}

// canDefer reports whether the call's token check may answer from the
// token's state the node read last, deferring its check to the commit of
// the call's event (store.Deferred; the oauth store decides whether it
// has such a state). Only where serving the call again changes nothing
// but the answer: a GET, with a bearer token (a DPoP proof is spent by the
// first check), and with the customer present (an unattended call is
// counted against the consent's daily limit, and would be counted twice);
// and only with a recorder that can commit under the check and a chain
// to serve the call again with (serveAgain).
func (h *dataHandler) canDefer(c *gin.Context) bool {
	if h.replay == nil || c.Request.Method != http.MethodGet || len(c.Request.Header.Values(HeaderCustomerIP)) == 0 {
		return false
	}
	if _, ok := h.audit.(audit.RowsRecorder); !ok {
		return false
	}
	scheme, _, _ := strings.Cut(c.Request.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "Bearer")
}

// record commits ev, under check when the call was answered from a
// remembered token state.
func (h *dataHandler) record(ctx context.Context, ev audit.Event, check *store.Check) (audit.Event, error) {
	if check == nil {
		return h.audit.Record(ctx, ev)
	}
	return h.audit.(audit.RowsRecorder).AppendWith(ctx, ev, audit.Rows{Require: &audit.Precondition{Query: check.Query, Args: check.Args}})
}

// replayKey holds, in the context of a call served again, the gin context
// of the call's first run.
type replayKey struct{}

// serveAgain serves c's call once more through the data chain without its
// audit step (h.replay, mounted with replayed in its place), every read
// live, the answer into w; what the call's event is made of comes back to
// c (replayed). The rate limit is not applied again (admit).
func (h *dataHandler) serveAgain(c *gin.Context, w http.ResponseWriter) {
	ctx := context.WithValue(store.WithoutDeferral(c.Request.Context()), replayKey{}, c)
	h.replay.ServeHTTP(w, c.Request.WithContext(ctx))
}

// replayed is the first step of the chain serveAgain runs: after the
// chain, it gives the first run's context what accessEvent and the
// metrics read (the caller, the principal, the errors), replacing what the
// first run had left there.
func (h *dataHandler) replayed(c *gin.Context) {
	c.Next()
	first, _ := c.Request.Context().Value(replayKey{}).(*gin.Context)
	if first == nil {
		return
	}
	for _, key := range []string{callerKey, principalKey, accountKey, accountIDKey} {
		if v, ok := c.Get(key); ok {
			first.Set(key, v)
		} else {
			first.Delete(key)
		}
	}
	first.Errors = append(first.Errors[:0], c.Errors...)
}

// newReplay is the engine serveAgain runs a call through: mount registers
// the data routes on it with replayed as their first step.
func newReplay(mount func(gin.IRouter)) *gin.Engine {
	e := gin.New()
	e.ContextWithFallback = true
	mount(e)
	return e
}

// accessEvent describes the call as far as the gate learnt it: a call
// refused for its token names no client; one refused later names the
// client, customer, grant and scopes its token carries. The path is the
// request path with the account id as sent (never the query), the account
// is the one asked for (also when refused), and the purpose is the
// Data-Purpose the client declared, or the consent's when it declared none.
func (h *dataHandler) accessEvent(c *gin.Context, status int, reason string) audit.Event {
	ev := audit.Event{
		Type: audit.DataAccess, Outcome: audit.Denied, Reason: reason, Status: status,
		Method: c.Request.Method, Path: c.Request.URL.Path, AccountID: c.Param("account_id"),
		InteractionID: InteractionID(c),
	}
	if status >= 200 && status < 300 {
		ev.Outcome = audit.Allowed
	}
	if reason == purpose.RefusePurposeProhibited || reason == purpose.RefusePurposeNotConsented {
		// SPEC §4, §6: a call refused for its purpose is a purpose block, so
		// one query for type=purpose.blocked finds every one, at PAR or here.
		ev.Type = audit.PurposeBlocked
	}
	if v, ok := c.Get(callerKey); ok {
		p := v.(*Principal)
		ev.ClientID, ev.CustomerID, ev.GrantID, ev.Scopes, ev.Purpose = p.ClientID, p.CustomerID, p.GrantID, p.Scopes, p.Purpose
		if cons := p.Consent; cons != nil {
			ev.CustomerID = cmp.Or(ev.CustomerID, cons.CustomerID)
			ev.GrantID = cmp.Or(ev.GrantID, cons.ID)
			ev.Purpose = cons.Purpose
		}
	}
	if declared := c.Request.Header.Values("Data-Purpose"); len(declared) > 0 {
		ev.Purpose = strings.Join(declared, ", ")
	}
	return ev
}

// RefusalCode is the stable code of the error a request was answered with
// (a problem code or an RFC 6750 error), or "" for a success: the metrics
// count refusals by it.
func RefusalCode(c *gin.Context) string {
	if r := refusalReason(c, c.Writer.Status()); r != reasonOK {
		return r
	}
	return ""
}

// refusalReason is "ok" for a 2xx answer, otherwise the code of the error
// the chain answered with (the problem's code or the RFC 6750 error).
func refusalReason(c *gin.Context, status int) string {
	if status >= 200 && status < 300 {
		return reasonOK
	}
	if last := c.Errors.Last(); last != nil {
		var te *TokenError
		if errors.As(last.Err, &te) {
			return cmp.Or(te.Code, "invalid_token")
		}
		return string(apperr.As(last.Err).Code)
	}
	return "http_" + strconv.Itoa(status)
}

// heldResponse keeps a data answer in memory until its audit event is
// committed. Headers go to the real writer's map (they are not sent before
// WriteHeaderNow on it); the status and body stay here.
type heldResponse struct {
	gin.ResponseWriter // the real writer
	status             int
	written            bool
	body               *bytes.Buffer // from heldBodies
}

// heldBodies are the buffers answers are held in: a page of transactions
// is tens of kilobytes, and growing a fresh buffer to that size for every
// call was a sixth of the bytes the gated page allocated.
var heldBodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// release gives the body's buffer back once the answer has been sent (or
// replaced); the writer must not be used after. A buffer grown past
// maxPooledPage is left to the collector.
func (w *heldResponse) release() {
	b := w.body
	w.body = nil
	if b != nil && b.Cap() <= maxPooledPage {
		b.Reset()
		heldBodies.Put(b)
	}
}

// reset empties the answer for the call to be served again.
func (w *heldResponse) reset() {
	w.status, w.written = http.StatusOK, false
	w.body.Reset()
}

func (w *heldResponse) WriteHeader(code int) {
	if code > 0 && !w.written {
		w.status = code
	}
}

func (w *heldResponse) WriteHeaderNow() { w.written = true }

func (w *heldResponse) Write(b []byte) (int, error) {
	w.written = true
	return w.body.Write(b)
}

func (w *heldResponse) WriteString(s string) (int, error) {
	w.written = true
	return w.body.WriteString(s)
}

func (w *heldResponse) Status() int   { return w.status }
func (w *heldResponse) Written() bool { return w.written }

func (w *heldResponse) Size() int {
	if !w.written {
		return -1
	}
	return w.body.Len()
}

// Flush does nothing: flushing would send the answer before its event.
func (w *heldResponse) Flush() {}

// Hijack is refused: a hijacked connection would bypass the audit step.
func (w *heldResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errors.New("httpapi: data responses cannot be hijacked")
}

// Pusher is nil: nothing may reach the client before the event commits.
func (w *heldResponse) Pusher() http.Pusher { return nil }
