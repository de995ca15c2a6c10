package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/audit"
)

// The operator API (SPEC §11, docs/operations.md): the bank's operations
// team lists and inspects the registered apps, suspends and reinstates
// them, ends all of an app's grants and rotates its secret. It translates
// HTTP to the ClientAdmin the server wires (the authorization server); the
// lifecycle events themselves (client.*, consent.revoked) are audited there,
// and refusals of operator calls here.

// ScopeAdminClients is the scope of the operator API.
const ScopeAdminClients = "admin:clients"

// AdminClient is a registered app as the operator API shows it.
type AdminClient struct {
	ClientID                string     `json:"client_id"`
	ClientName              string     `json:"client_name"`
	Status                  string     `json:"status"` // active | suspended
	RedirectURIs            []string   `json:"redirect_uris"`
	GrantTypes              []string   `json:"grant_types"`
	Scope                   string     `json:"scope"`
	Purposes                []string   `json:"purposes"`
	TokenEndpointAuthMethod string     `json:"token_endpoint_auth_method"`
	CreatedAt               time.Time  `json:"created_at"`
	ActiveGrants            int64      `json:"active_grants"`
	SuspendedAt             *time.Time `json:"suspended_at"`
	SuspendedReason         string     `json:"suspended_reason,omitempty"`
	SuspendedBy             string     `json:"suspended_by,omitempty"`
	SecretRotatedAt         *time.Time `json:"secret_rotated_at"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

// Client statuses of the operator API.
const (
	ClientActive    = "active"
	ClientSuspended = "suspended"
)

// ErrAdminClientNotFound is returned by a ClientAdmin for an unknown id.
var ErrAdminClientNotFound = errors.New("httpapi: no such client")

// ClientAdmin is what the operator API acts through; by is always the
// operator's client id.
type ClientAdmin interface {
	// List returns up to limit clients in id order after the id after, and
	// whether more follow.
	List(ctx context.Context, after string, limit int) ([]AdminClient, bool, error)
	// Get returns one client (ErrAdminClientNotFound when unknown).
	Get(ctx context.Context, id string) (*AdminClient, error)
	// Suspend suspends the client on every node from the next request.
	Suspend(ctx context.Context, id, reason, by string) (*AdminClient, error)
	// Reinstate lifts a suspension.
	Reinstate(ctx context.Context, id, reason, by string) (*AdminClient, error)
	// RevokeGrants ends every live grant of the client; it returns how many.
	RevokeGrants(ctx context.Context, id, reason, by string) (int, error)
	// RotateSecret issues a new secret; the old one works for grace
	// (0: the default). It returns the secret and the old one's end.
	RotateSecret(ctx context.Context, id string, grace time.Duration, reason, by string) (string, time.Time, error)
}

// AdminDeps are what the operator API needs.
type AdminDeps struct {
	Clients ClientAdmin
	Auth    Authenticator
	// Audit records the refused operator calls (the allowed ones are
	// audited by the lifecycle operations themselves).
	Audit  audit.Recorder
	Logger *slog.Logger // nil: discard
}

type adminHandler struct {
	clients ClientAdmin
	auth    Authenticator
	audit   audit.Recorder
	log     *slog.Logger
}

// Operator API page sizes.
const (
	adminDefaultLimit = 100
	adminMaxLimit     = 1000
	// maxAdminBody bounds an operator call's JSON body.
	maxAdminBody = 16 << 10
	// maxReasonLen bounds the reason an operator gives.
	maxReasonLen = 500
)

// RegisterAdmin mounts the operator API on r:
//
//	GET  /admin/v1/clients                      keyset pages (limit, cursor)
//	GET  /admin/v1/clients/{id}
//	POST /admin/v1/clients/{id}/suspend         {"reason"}
//	POST /admin/v1/clients/{id}/reinstate       {"reason"}
//	POST /admin/v1/clients/{id}/revoke-grants   {"reason"}
//	POST /admin/v1/clients/{id}/rotate-secret   {"reason", "grace_seconds"}
//
// Every call needs a client_credentials token with scope admin:clients.
func RegisterAdmin(r gin.IRouter, d AdminDeps) {
	if d.Clients == nil || d.Auth == nil {
		panic("httpapi.RegisterAdmin: Clients and Auth are required")
	}
	h := &adminHandler{clients: d.Clients, auth: d.Auth, audit: d.Audit, log: d.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	g := r.Group("/admin/v1/clients", h.authenticate)
	g.GET("", h.list)
	g.GET("/:id", h.get)
	g.POST("/:id/suspend", h.suspend)
	g.POST("/:id/reinstate", h.reinstate)
	g.POST("/:id/revoke-grants", h.revokeGrants)
	g.POST("/:id/rotate-secret", h.rotateSecret)
}

const operatorKey = "consentgate.operator"

// authenticate admits client_credentials tokens carrying admin:clients;
// a refused token is audited against the action it tried.
func (h *adminHandler) authenticate(c *gin.Context) {
	p, ok := authenticateToken(c, h.auth)
	if !ok {
		return
	}
	switch {
	case p.Consent != nil || p.CustomerID != "":
		writeTokenError(c, &TokenError{Status: http.StatusForbidden, Code: "insufficient_scope",
			Description: "The operator API takes client_credentials tokens of an operator client only, not tokens of a customer's consent."}, ScopeAdminClients)
	case !slices.Contains(p.Scopes, ScopeAdminClients):
		writeTokenError(c, &TokenError{Status: http.StatusForbidden, Code: "insufficient_scope",
			Description: "The operator API needs the " + ScopeAdminClients + " scope, which this token does not carry."}, ScopeAdminClients)
	default:
		c.Set(operatorKey, p.ClientID)
		c.Next()
		return
	}
	h.deny(c, p.ClientID, "insufficient_scope")
}

// deny audits a refused operator call under the type of what it tried.
func (h *adminHandler) deny(c *gin.Context, operator, reason string) {
	var typ audit.Type
	switch {
	case strings.HasSuffix(c.Request.URL.Path, "/suspend"):
		typ = audit.ClientSuspended
	case strings.HasSuffix(c.Request.URL.Path, "/reinstate"):
		typ = audit.ClientReinstated
	case strings.HasSuffix(c.Request.URL.Path, "/rotate-secret"):
		typ = audit.ClientSecretRotated
	case strings.HasSuffix(c.Request.URL.Path, "/revoke-grants"):
		typ = audit.ConsentRevoked
	case c.Request.Method == http.MethodGet:
		typ = audit.ClientViewed
	default:
		return
	}
	ev := audit.Event{Type: typ, Outcome: audit.Denied, Reason: "operator " + operator + ": " + reason,
		ClientID: c.Param("id"), Method: c.Request.Method, Path: c.Request.URL.Path, Status: c.Writer.Status(),
		InteractionID: InteractionID(c)}
	if h.audit == nil {
		return
	}
	if _, err := h.audit.Record(c.Request.Context(), ev); err != nil {
		h.log.ErrorContext(c.Request.Context(), "operator refusal not audited", "client_id", ev.ClientID,
			"reason", reason, "error", err.Error())
	}
}

type clientPage struct {
	Data       []AdminClient `json:"data"`
	NextCursor *string       `json:"next_cursor"`
}

func (h *adminHandler) list(c *gin.Context) {
	q := c.Request.URL.Query()
	limit := adminDefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > adminMaxLimit {
			WriteProblem(c, apperr.New(apperr.InvalidRequest, "limit must be a whole number from 1 to 1000."))
			return
		}
		limit = n
	}
	after := ""
	if v := q.Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) == 0 || len(b) > 256 {
			WriteProblem(c, apperr.New(apperr.InvalidCursor, "The cursor is not one this API returned; start again without it."))
			return
		}
		after = string(b)
	}
	clients, more, err := h.clients.List(c.Request.Context(), after, limit)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	if !h.viewed(c, "") {
		return
	}
	page := clientPage{Data: clients}
	if page.Data == nil {
		page.Data = []AdminClient{}
	}
	if more && len(clients) > 0 {
		next := base64.RawURLEncoding.EncodeToString([]byte(clients[len(clients)-1].ClientID))
		page.NextCursor = &next
	}
	c.JSON(http.StatusOK, page)
}

func (h *adminHandler) get(c *gin.Context) {
	cl, err := h.clients.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		WriteProblem(c, adminErr(err))
		h.deny(c, c.GetString(operatorKey), string(apperr.As(adminErr(err)).Code))
		return
	}
	if !h.viewed(c, cl.ClientID) {
		return
	}
	c.JSON(http.StatusOK, cl)
}

// viewed records an operator's read as client.viewed before the answer
// is sent (clientID "" for the list); when the log cannot be written the
// call gets 503 audit_unavailable instead, as data calls do.
func (h *adminHandler) viewed(c *gin.Context, clientID string) bool {
	if h.audit == nil {
		return true
	}
	ev := audit.Event{Type: audit.ClientViewed, Outcome: audit.Allowed, Reason: "operator " + c.GetString(operatorKey),
		ClientID: clientID, Method: c.Request.Method, Path: c.Request.URL.Path, Status: http.StatusOK,
		InteractionID: InteractionID(c)}
	if _, err := h.audit.Record(c.Request.Context(), ev); err != nil {
		WriteProblem(c, apperr.Wrap(apperr.AuditUnavailable, "The audit log could not record this call; retry shortly.", err))
		return false
	}
	return true
}

// adminRequest is the body of the operator's POST calls.
type adminRequest struct {
	Reason       string `json:"reason"`
	GraceSeconds *int64 `json:"grace_seconds"`
}

// body reads the JSON body; a suspension must say why.
func (h *adminHandler) body(c *gin.Context, reasonRequired bool) (*adminRequest, bool) {
	var req adminRequest
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxAdminBody))
	if err == nil && len(b) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		err = dec.Decode(&req)
	}
	switch {
	case err != nil:
		WriteProblem(c, apperr.Wrap(apperr.InvalidRequest,
			`The body must be a JSON object such as {"reason": "why"} (at most 16 KiB, no other fields).`, err))
	case reasonRequired && strings.TrimSpace(req.Reason) == "":
		WriteProblem(c, apperr.New(apperr.InvalidRequest, `Say why: the body needs a non-empty "reason", which goes to the audit log.`))
	case len(req.Reason) > maxReasonLen:
		WriteProblem(c, apperr.New(apperr.InvalidRequest, "The reason is at most 500 bytes."))
	default:
		return &req, true
	}
	h.deny(c, c.GetString(operatorKey), string(apperr.InvalidRequest))
	return nil, false
}

func (h *adminHandler) suspend(c *gin.Context) {
	h.change(c, true, h.clients.Suspend)
}

func (h *adminHandler) reinstate(c *gin.Context) {
	h.change(c, false, h.clients.Reinstate)
}

func (h *adminHandler) change(c *gin.Context, reasonRequired bool,
	op func(ctx context.Context, id, reason, by string) (*AdminClient, error)) {
	req, ok := h.body(c, reasonRequired)
	if !ok {
		return
	}
	cl, err := op(c.Request.Context(), c.Param("id"), req.Reason, c.GetString(operatorKey))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, cl)
}

func (h *adminHandler) revokeGrants(c *gin.Context) {
	req, ok := h.body(c, true)
	if !ok {
		return
	}
	n, err := h.clients.RevokeGrants(c.Request.Context(), c.Param("id"), req.Reason, c.GetString(operatorKey))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"client_id": c.Param("id"), "revoked_grants": n})
}

func (h *adminHandler) rotateSecret(c *gin.Context) {
	req, ok := h.body(c, false)
	if !ok {
		return
	}
	var grace time.Duration
	if req.GraceSeconds != nil {
		if *req.GraceSeconds < 0 || *req.GraceSeconds > 30*24*3600 {
			WriteProblem(c, apperr.New(apperr.InvalidRequest, "grace_seconds must be from 0 to 2592000 (30 days)."))
			h.deny(c, c.GetString(operatorKey), string(apperr.InvalidRequest))
			return
		}
		grace = time.Duration(*req.GraceSeconds) * time.Second
		if grace == 0 {
			grace = -1 // the old secret ends now
		}
	}
	secret, until, err := h.clients.RotateSecret(c.Request.Context(), c.Param("id"), grace, req.Reason, c.GetString(operatorKey))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"client_id": c.Param("id"), "client_secret": secret,
		"previous_secret_expires_at": until.UTC().Format(time.RFC3339)})
}

// fail answers a lifecycle error and audits the refusal.
func (h *adminHandler) fail(c *gin.Context, err error) {
	err = adminErr(err)
	WriteProblem(c, err)
	h.deny(c, c.GetString(operatorKey), string(apperr.As(err).Code))
}

// ErrAdminNoSecret is returned by RotateSecret for a client without a
// secret.
var ErrAdminNoSecret = errors.New("httpapi: client has no secret")

func adminErr(err error) error {
	switch {
	case errors.Is(err, ErrAdminClientNotFound):
		return apperr.Wrap(apperr.NotFound, "No client is registered with this id.", err)
	case errors.Is(err, ErrAdminNoSecret):
		return apperr.Wrap(apperr.Conflict, "This client authenticates with private_key_jwt and has no secret to rotate; it rotates its own keys at its JWKS.", err)
	}
	return err
}
