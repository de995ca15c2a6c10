package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/ingest"
)

// The provider API (SPEC §7, docs/ingestion.md): a bank's core systems
// upsert their institution's customers, accounts, balances and card
// transactions in batches. It translates HTTP to package ingest, which
// validates and writes; this file decides who may write and records every
// attempt in the audit log.

// ScopeProviderWrite is the scope of the provider API.
const ScopeProviderWrite = "provider:write"

// EventProviderWrite is the audit event type of a provider batch.
const EventProviderWrite = audit.ProviderWrite

// ProviderDeps are what the provider API needs.
type ProviderDeps struct {
	Ingest *ingest.Service
	Auth   Authenticator
	// Audit records one provider.write event per batch, before the batch
	// is written: no audit, no write. nil refuses every batch with 503
	// audit_unavailable.
	Audit  audit.Recorder
	Logger *slog.Logger // nil: discard
	// MaxRecords bounds the records of one batch (0: 5000).
	MaxRecords int
	// MaxBodyBytes bounds a batch's body (0: 8 MiB).
	MaxBodyBytes int64
}

type providerHandler struct {
	ingest     *ingest.Service
	auth       Authenticator
	audit      audit.Recorder
	log        *slog.Logger
	maxRecords int
	maxBody    int64
}

// providerPaths maps each endpoint under /v1/provider to its record type.
var providerPaths = []struct {
	path string
	kind ingest.Kind
}{
	{"institutions", ingest.KindInstitution},
	{"customers", ingest.KindCustomer},
	{"accounts", ingest.KindAccount},
	{"balances", ingest.KindBalance},
	{"transactions", ingest.KindTransaction},
}

// RegisterProvider mounts the provider API on r:
//
//	POST /v1/provider/institutions   POST /v1/provider/customers
//	POST /v1/provider/accounts       POST /v1/provider/balances
//	POST /v1/provider/transactions
//
// Each takes {"records": [...]} of its record type, needs a
// client_credentials token with provider:write of a client registered as an
// institution's provider, and writes the whole batch or nothing.
func RegisterProvider(r gin.IRouter, d ProviderDeps) {
	h := &providerHandler{ingest: d.Ingest, auth: d.Auth, audit: d.Audit, log: d.Logger,
		maxRecords: d.MaxRecords, maxBody: d.MaxBodyBytes}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxRecords <= 0 {
		h.maxRecords = ingest.DefaultMaxRecords
	}
	if h.maxBody <= 0 {
		h.maxBody = ingest.DefaultMaxBodyBytes
	}
	g := r.Group("/v1/provider")
	for _, p := range providerPaths {
		g.POST("/"+p.path, h.write(p.kind))
	}
}

// providerResult is the answer to an applied batch.
type providerResult struct {
	ingest.Stats
}

// recordsProblem is the problem+json of invalid_records: the records at
// fault, by index and field.
type recordsProblem struct {
	Problem
	Errors     []ingest.FieldError `json:"errors"`
	ErrorCount int                 `json:"error_count"`
}

func (h *providerHandler) write(kind ingest.Kind) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		ev := audit.Event{Type: EventProviderWrite, Method: c.Request.Method, Path: c.Request.URL.Path,
			InteractionID: InteractionID(c)}

		p, ok := authenticateToken(c, h.auth)
		if !ok {
			return // not audited: nobody is known to have tried to write
		}
		ev.ClientID, ev.Scopes = p.ClientID, p.Scopes
		if p.Consent != nil || p.CustomerID != "" {
			writeTokenError(c, &TokenError{Description: "Provider endpoints need a client_credentials token of a data provider, not a token that acts for a customer."}, "")
			h.deny(ctx, c, ev, "invalid_token")
			return
		}
		if !slices.Contains(p.Scopes, ScopeProviderWrite) {
			writeTokenError(c, &TokenError{Status: http.StatusForbidden, Code: "insufficient_scope",
				Description: "This call needs the " + ScopeProviderWrite + " scope, which this token does not carry."}, ScopeProviderWrite)
			h.deny(ctx, c, ev, "insufficient_scope")
			return
		}
		institution, err := h.ingest.InstitutionOf(ctx, p.ClientID)
		if err != nil {
			if errors.Is(err, ingest.ErrNotRegistered) {
				err = apperr.New(apperr.ProviderNotRegistered,
					"This client is not registered as the data provider of an institution; ask the operator to register it.")
			}
			h.fail(ctx, c, ev, err)
			return
		}

		body, err := h.readBody(c)
		if err != nil {
			h.fail(ctx, c, ev, err)
			return
		}
		batch, err := h.ingest.ParseJSON(institution, kind, body, h.maxRecords)
		if err != nil {
			h.fail(ctx, c, ev, err)
			return
		}
		ev.Reason = batch.Summary()

		// No audit, no write: the attempt is in the log before anything is
		// written. Should the write then fail, a denied event follows.
		allowed := ev
		allowed.Outcome, allowed.Status = audit.Allowed, http.StatusOK
		if err := h.record(ctx, allowed); err != nil {
			WriteProblem(c, apperr.Wrap(apperr.AuditUnavailable,
				"The batch could not be recorded in the audit log, so nothing was written. Send it again later.", err))
			return
		}
		st, err := h.ingest.Apply(ctx, batch)
		if err != nil {
			h.fail(ctx, c, ev, err)
			return
		}
		c.JSON(http.StatusOK, providerResult{st})
	}
}

// readBody reads at most maxBody bytes of the request body.
func (h *providerHandler) readBody(c *gin.Context) ([]byte, error) {
	tooLarge := apperr.New(apperr.PayloadTooLarge, fmt.Sprintf(
		"A batch body holds at most %d bytes and %d records: split it into several requests.", h.maxBody, h.maxRecords))
	if c.Request.ContentLength > h.maxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, h.maxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case err != nil:
		return nil, apperr.Wrap(apperr.InvalidRequest, "The request body could not be read.", err)
	}
	return body, nil
}

// fail answers err and records the refusal.
func (h *providerHandler) fail(ctx context.Context, c *gin.Context, ev audit.Event, err error) {
	var re *ingest.RecordsError
	reason := ""
	switch {
	case errors.As(err, &re):
		writeRecordsProblem(c, re)
		reason = fmt.Sprintf("%s: %d record(s) refused", apperr.InvalidRecords, re.Total)
	default:
		WriteProblem(c, err)
		reason = string(apperr.As(err).Code)
	}
	if ev.Reason != "" { // the batch's summary
		reason += " (" + ev.Reason + ")"
	}
	h.deny(ctx, c, ev, reason)
}

// deny records a refused attempt with the status already answered. The
// refusal stands even when the audit log is down (nothing was written); the
// failure to record it is logged.
func (h *providerHandler) deny(ctx context.Context, c *gin.Context, ev audit.Event, reason string) {
	ev.Outcome, ev.Status, ev.Reason = audit.Denied, c.Writer.Status(), reason
	if err := h.record(ctx, ev); err != nil {
		h.log.LogAttrs(ctx, slog.LevelError, "provider write refusal not audited",
			slog.String("client_id", ev.ClientID), slog.String("reason", reason),
			slog.String("interaction_id", ev.InteractionID), slog.String("error", err.Error()))
	}
}

func (h *providerHandler) record(ctx context.Context, ev audit.Event) error {
	if h.audit == nil {
		return errors.New("no audit recorder configured")
	}
	_, err := h.audit.Record(ctx, ev)
	return err
}

func writeRecordsProblem(c *gin.Context, re *ingest.RecordsError) {
	_ = c.Error(re) // for the access log
	detail := fmt.Sprintf("%d record(s) are invalid, so nothing was written. Fix them and send the whole batch again.", re.Total)
	if re.Total > len(re.Errors) {
		detail += fmt.Sprintf(" The first %d are listed.", len(re.Errors))
	}
	status := apperr.Status(apperr.InvalidRecords)
	p := recordsProblem{
		Problem: Problem{Type: ProblemTypeBase + string(apperr.InvalidRecords), Title: apperr.Title(apperr.InvalidRecords),
			Status: status, Detail: detail, Code: string(apperr.InvalidRecords), InteractionID: InteractionID(c)},
		Errors: re.Errors, ErrorCount: re.Total,
	}
	body, err := json.Marshal(p)
	if err != nil {
		WriteProblem(c, err)
		return
	}
	c.Data(status, "application/problem+json", body)
	c.Abort()
}
