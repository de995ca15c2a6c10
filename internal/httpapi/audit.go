package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/audit"
)

// ScopeAuditRead is the scope of the auditor API.
const ScopeAuditRead = "audit:read"

// AuditLog is what the auditor API reads; *audit.Reader implements it.
type AuditLog interface {
	// Query returns one page of events matching f after cursor.
	Query(ctx context.Context, f audit.Filter, limit int, cursor string) ([]audit.Event, string, error)
	// Export streams every event matching f to w as format.
	Export(ctx context.Context, f audit.Filter, w io.Writer, format string) (int64, error)
	// Verify checks the whole chain and its checkpoints against keys.
	Verify(ctx context.Context, keys *jose.JSONWebKeySet) (audit.Report, error)
	// TreeHeads returns signed tree heads newest first, below tree size
	// before (0: from the newest).
	TreeHeads(ctx context.Context, limit int, before int64) ([]audit.TreeHead, error)
	// InclusionProof returns the audit path of seq in the tree of treeSize.
	InclusionProof(ctx context.Context, seq, treeSize int64) (*audit.InclusionProof, error)
	// ConsistencyProof returns the proof between trees of first and second leaves.
	ConsistencyProof(ctx context.Context, first, second int64) (*audit.ConsistencyProof, error)
}

// AuditDeps are what the auditor API needs.
type AuditDeps struct {
	Log  AuditLog
	Auth Authenticator
	// Keys verify the signed checkpoints (the public keys of jwks_uri).
	Keys *jose.JSONWebKeySet
	// KeySet, when set, replaces Keys and is asked at each verification:
	// a key ring's audit keys, which a rotation on any node extends.
	KeySet func() *jose.JSONWebKeySet
	Logger *slog.Logger // nil: discard
}

type auditHandler struct {
	log  AuditLog
	auth Authenticator
	keys func() *jose.JSONWebKeySet
	ops  *slog.Logger
}

// RegisterAudit mounts the auditor API of SPEC §6 on r:
//
//	GET /v1/audit/events              filters, keyset pages, or a streamed NDJSON/CSV export
//	GET /v1/audit/verify              the chain's verdict
//	GET /v1/audit/checkpoints         signed tree heads (SPEC §13), newest first
//	GET /v1/audit/proof/inclusion     RFC 9162 inclusion proof of one event
//	GET /v1/audit/proof/consistency   RFC 9162 consistency proof between two tree sizes
//
// All need a client_credentials token with scope audit:read. Auditor reads
// are not themselves audit events: the SPEC's event types describe access to
// customer data and its consents, and an event per read would change the very
// log an auditor is paging through. They are in the access log, with the
// interaction id.
func RegisterAudit(r gin.IRouter, d AuditDeps) {
	if d.Log == nil || d.Auth == nil || (d.Keys == nil && d.KeySet == nil) {
		panic("httpapi.RegisterAudit: Log, Auth and Keys (or KeySet) are required")
	}
	keys := d.KeySet
	if keys == nil {
		keys = func() *jose.JSONWebKeySet { return d.Keys }
	}
	h := &auditHandler{log: d.Log, auth: d.Auth, keys: keys, ops: d.Logger}
	if h.ops == nil {
		h.ops = slog.New(slog.DiscardHandler)
	}
	g := r.Group("/v1/audit", h.authenticate)
	g.GET("/events", h.events)
	g.GET("/verify", h.verify)
	registerTreeRoutes(g, h)
}

// authenticate admits client_credentials tokens carrying audit:read. A
// token with a customer's consent is refused even if it carried the scope:
// the log holds every customer's activity, which no app acting for one
// customer may read.
func (h *auditHandler) authenticate(c *gin.Context) {
	p, ok := authenticateToken(c, h.auth)
	switch {
	case !ok:
		return
	case p.Consent != nil || p.CustomerID != "":
		writeTokenError(c, &TokenError{Status: http.StatusForbidden, Code: "insufficient_scope",
			Description: "The audit API takes client_credentials tokens of an auditor client only, not tokens of a customer's consent."}, ScopeAuditRead)
		return
	case !slices.Contains(p.Scopes, ScopeAuditRead):
		writeTokenError(c, &TokenError{Status: http.StatusForbidden, Code: "insufficient_scope",
			Description: "The audit API needs the " + ScopeAuditRead + " scope, which this token does not carry."}, ScopeAuditRead)
		return
	}
	c.Next()
}

type eventPage struct {
	Data       []audit.Event `json:"data"`
	NextCursor *string       `json:"next_cursor"`
}

// events answers a page of JSON, or with an Accept of application/x-ndjson
// or text/csv, the whole filtered result as one streamed export.
func (h *auditHandler) events(c *gin.Context) {
	q := c.Request.URL.Query()
	f, err := audit.ParseFilter(q)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	if format := exportFormat(c.Request.Header.Values("Accept")); format != "" {
		if q.Has("limit") || q.Has("cursor") {
			WriteProblem(c, apperr.New(apperr.InvalidRequest,
				"limit and cursor apply to JSON pages; an export (Accept: application/x-ndjson or text/csv) returns every matching event."))
			return
		}
		h.export(c, f, format)
		return
	}
	limit, cursor, err := pageParams(q)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	evs, next, err := h.log.Query(c.Request.Context(), f, limit, cursor)
	if err != nil {
		h.fail(c, err)
		return
	}
	page := eventPage{Data: evs}
	if page.Data == nil {
		page.Data = []audit.Event{}
	}
	if next != "" {
		page.NextCursor = &next
	}
	c.JSON(http.StatusOK, page)
}

// pageParams reads limit (0 when absent: the reader's default) and cursor.
func pageParams(q map[string][]string) (limit int, cursor string, err error) {
	if vs := q["limit"]; len(vs) > 0 {
		if len(vs) > 1 {
			return 0, "", apperr.New(apperr.InvalidRequest, "limit must be given at most once.")
		}
		n, err := strconv.Atoi(vs[0])
		if err != nil || n < 1 || n > audit.MaxLimit {
			return 0, "", apperr.New(apperr.InvalidRequest, "limit must be an integer between 1 and "+strconv.Itoa(audit.MaxLimit)+".")
		}
		limit = n
	}
	if vs := q["cursor"]; len(vs) > 0 {
		if len(vs) > 1 {
			return 0, "", apperr.New(apperr.InvalidRequest, "cursor must be given at most once.")
		}
		if vs[0] == "" {
			return 0, "", apperr.New(apperr.InvalidCursor, "cursor is empty; leave it out for the first page.")
		}
		cursor = vs[0]
	}
	return limit, cursor, nil
}

// exportFormat picks the export the Accept header asks for: the first
// listed media range that is NDJSON, CSV or JSON (a range with q=0 is
// skipped); "" means JSON pages, also for anything unrecognised.
func exportFormat(accept []string) string {
	for _, header := range accept {
		for part := range strings.SplitSeq(header, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q == 0 {
				continue
			}
			switch mt {
			case "application/x-ndjson", "application/ndjson":
				return audit.FormatNDJSON
			case "text/csv":
				return audit.FormatCSV
			case "application/json", "application/*", "*/*":
				return ""
			}
		}
	}
	return ""
}

// export streams the result. Once the first byte is out the status cannot
// change, so a failure after that aborts the connection: the client sees a
// broken transfer, never a short export that looks complete.
func (h *auditHandler) export(c *gin.Context, f audit.Filter, format string) {
	contentType, ext := "application/x-ndjson", "ndjson"
	if format == audit.FormatCSV {
		contentType, ext = "text/csv; charset=utf-8", "csv"
	}
	c.Header("Content-Type", contentType)
	c.Header("Content-Disposition", `attachment; filename="audit-events.`+ext+`"`)
	c.Status(http.StatusOK)
	n, err := h.log.Export(c.Request.Context(), f, c.Writer, format)
	if err == nil {
		return
	}
	if !c.Writer.Written() {
		c.Writer.Header().Del("Content-Disposition")
		h.fail(c, err)
		return
	}
	h.ops.LogAttrs(c.Request.Context(), slog.LevelError, "audit export aborted mid-stream",
		slog.Int64("events_sent", n), slog.String("interaction_id", InteractionID(c)), slog.String("err", err.Error()))
	panic(http.ErrAbortHandler)
}

func (h *auditHandler) verify(c *gin.Context) {
	rep, err := h.log.Verify(c.Request.Context(), h.keys())
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, rep)
}

// fail answers a reader error: its own code when it has one (a bad filter
// or cursor), otherwise 503, since the log could not be read.
func (h *auditHandler) fail(c *gin.Context, err error) {
	var e *apperr.E
	if !errors.As(err, &e) {
		err = apperr.Wrap(apperr.Unavailable, "The audit log cannot be read right now; retry shortly.", err)
	}
	WriteProblem(c, err)
}
