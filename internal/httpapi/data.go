package httpapi

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/audit"
	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/purpose"
)

type dataHandler struct {
	accounts accounts.Store
	auth     Authenticator
	audit    audit.Recorder
	usage    UsageCounter
	sync     SyncStore
	// cursorKey authenticates sync cursors (synccursor.go).
	cursorKey []byte
	purposes  *purpose.Table
	log       *slog.Logger
	now       func() time.Time
	limit     RateLimiter // nil: no rate limit
	// replay serves a call again when the token state it was answered
	// from changed before its event committed (serveAgain); nil where
	// calls are never answered from a remembered state (userinfo).
	replay      http.Handler
	servedAgain func() // nil: not counted
}

// RegisterData mounts the data API of SPEC §3 on r:
//
//	GET /v1/accounts                               accounts:read
//	GET /v1/accounts/:account_id                   accounts:read
//	GET /v1/accounts/:account_id/balances          balances:read
//	GET /v1/accounts/:account_id/transactions      transactions:read
//	GET /v1/accounts/:account_id/transactions/sync transactions:read (with Deps.Sync)
//
// Every route runs the gate (authenticate, purpose, scope, account) before
// its handler; the handlers only read and shape data. The audit step goes
// first in the group, so it sees every data call and the answer the rest of
// the chain decided, and holds that answer back until its data.access event
// is committed. It panics without d.Audit: a data API without its audit log
// must not start.
func RegisterData(r gin.IRouter, d Deps) {
	h := newDataHandler(d)
	h.routes(r, h.recordAccess)
	h.replay = newReplay(func(e gin.IRouter) { h.routes(e, h.replayed) })
}

// routes mounts the data routes on r, first their first step: the audit
// step, or replayed on the engine that serves a call again (serveAgain).
func (h *dataHandler) routes(r gin.IRouter, first gin.HandlerFunc) {
	v1 := r.Group("/v1", first, h.authenticate)
	v1.GET("/accounts", h.decide(purpose.ScopeAccounts, consent.ResourceAccounts), h.listAccounts)
	v1.GET("/accounts/:account_id", h.decide(purpose.ScopeAccounts, consent.ResourceAccount), h.loadAccount, h.getAccount)
	v1.GET("/accounts/:account_id/balances", h.decide(purpose.ScopeBalances, consent.ResourceBalances), h.loadAccount, h.getBalances)
	v1.GET("/accounts/:account_id/transactions", h.decide(purpose.ScopeTransactions, consent.ResourceTransactions), h.consentedAccount, h.listTransactions)
	if h.sync != nil {
		v1.GET("/accounts/:account_id/transactions/sync", h.decide(purpose.ScopeTransactions, consent.ResourceSync), h.consentedAccount, h.listSync)
	}
}

// newDataHandler is the gate and the data handlers on d, for every route
// group that serves customer data (/v1 and /fdx/v6). It panics without
// d.Audit: a data API without its audit log must not start.
func newDataHandler(d Deps) *dataHandler {
	if d.Audit == nil {
		panic("httpapi: Deps.Audit is required (no audit, no data)")
	}
	if d.Usage == nil {
		panic("httpapi: Deps.Usage is required (SPEC §4 daily limits)")
	}
	h := &dataHandler{accounts: d.Accounts, auth: d.Auth, audit: d.Audit, usage: d.Usage, sync: d.Sync, cursorKey: d.CursorKey,
		purposes: d.Purposes, log: d.Logger, now: d.Now, limit: d.Limiter, servedAgain: d.ServedAgain}
	if h.cursorKey == nil {
		h.cursorKey = make([]byte, 32)
		if _, err := rand.Read(h.cursorKey); err != nil {
			panic("httpapi: no randomness for the sync cursor key: " + err.Error())
		}
	}
	if h.purposes == nil {
		h.purposes = purpose.Default()
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// The response shapes of SPEC §3: money as decimal strings in major units,
// times RFC 3339 in UTC, absent values as null.

type accountView struct {
	AccountID       string  `json:"account_id"`
	InstitutionID   string  `json:"institution_id"`
	InstitutionName string  `json:"institution_name"`
	Type            string  `json:"type"`
	DisplayName     *string `json:"display_name"`  // null when the purpose may not see it
	MaskedNumber    *string `json:"masked_number"` // null when the purpose may not see it
	Currency        string  `json:"currency"`
	Status          string  `json:"status"`
}

func viewAccount(a *accounts.Account, fs purpose.FieldSet) accountView {
	v := accountView{
		AccountID: a.ID, InstitutionID: a.InstitutionID, InstitutionName: a.InstitutionName, Type: a.Type,
		Currency: a.Currency, Status: a.Status,
	}
	if fs.Sees(purpose.FieldDisplayName) {
		v.DisplayName = &a.DisplayName
	}
	if fs.Sees(purpose.FieldMaskedNumber) {
		masked := "****" + a.Last4
		v.MaskedNumber = &masked
	}
	return v
}

type balanceView struct {
	AccountID   string  `json:"account_id"`
	Currency    string  `json:"currency"`
	Current     string  `json:"current"`
	Available   string  `json:"available"`
	CreditLimit *string `json:"credit_limit"`
	AsOf        string  `json:"as_of"`
}

type transactionView struct {
	TransactionID        string  `json:"transaction_id"`
	AccountID            string  `json:"account_id"`
	Status               string  `json:"status"`
	TransactedAt         string  `json:"transacted_at"`
	BookedAt             *string `json:"booked_at"`
	Amount               string  `json:"amount"`
	Currency             string  `json:"currency"`
	Description          string  `json:"description"`
	MerchantName         *string `json:"merchant_name"`          // null when none
	MerchantCategoryCode *string `json:"merchant_category_code"` // null when no card merchant
	CardLast4            *string `json:"card_last4"`             // null when no card
}

// orNull is nil for "": the store keeps absent text as "", the API says null.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type single[T any] struct {
	Data T `json:"data"`
}

type list[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (h *dataHandler) listAccounts(c *gin.Context) {
	cons := PrincipalFrom(c).Consent
	fs := h.fields(cons)
	// Only the consent's accounts are ever asked for, and only the ones the
	// consent's customer still owns come back.
	as, err := h.accounts.ListByIDs(c.Request.Context(), cons.CustomerID, cons.AccountIDs)
	if err != nil {
		readFailed(c, "listing accounts", err)
		return
	}
	out := list[accountView]{Data: make([]accountView, len(as))}
	for i := range as {
		out.Data[i] = viewAccount(&as[i], fs)
	}
	c.JSON(http.StatusOK, out)
}

func (h *dataHandler) getAccount(c *gin.Context) {
	c.JSON(http.StatusOK, single[accountView]{Data: viewAccount(accountFrom(c), h.fields(PrincipalFrom(c).Consent))})
}

func (h *dataHandler) getBalances(c *gin.Context) {
	a := accountFrom(c)
	b, err := h.accounts.Balance(c.Request.Context(), a.ID)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		WriteProblem(c, apperr.New(apperr.NotFound, "No balance has been reported for this account yet. Try again later."))
		return
	case err != nil:
		readFailed(c, "reading the balance", err)
		return
	}
	v := balanceView{
		AccountID: a.ID, Currency: b.Currency, Current: accounts.FormatMinor(b.Current, b.Currency),
		Available: accounts.FormatMinor(b.Available, b.Currency), AsOf: timestamp(b.AsOf),
	}
	if a.Type == accounts.TypeCreditCard && b.CreditLimit != nil {
		limit := accounts.FormatMinor(*b.CreditLimit, b.Currency)
		v.CreditLimit = &limit
	}
	c.JSON(http.StatusOK, single[balanceView]{Data: v})
}

func (h *dataHandler) listTransactions(c *gin.Context) {
	p, accountID := PrincipalFrom(c), accountIDFrom(c)
	now := h.now()
	q, binding, err := parseTxQuery(c.Request.URL.Query(), accountID, now, h.history(p.Consent, now))
	if err != nil {
		WriteProblem(c, err)
		return
	}
	q.CustomerID = p.Consent.CustomerID
	q.Hidden = hiddenTxFields(h.fields(p.Consent))
	txs, next, err := h.accounts.Transactions(c.Request.Context(), q)
	if errors.Is(err, accounts.ErrNotFound) {
		WriteProblem(c, errAccountNotFound)
		return
	}
	if err != nil {
		readFailed(c, "reading transactions", err)
		return
	}
	// The page is written by hand rather than through transactionView and
	// c.JSON: it is the largest answer of the API, and encoding/json was a
	// measurable share of its cost (txjson.go). The bytes are the same.
	var cursor *string
	if next != nil {
		s := encodeCursor(*next, binding)
		cursor = &s
	}
	writeTransactionPage(c, txs, cursor, q.Hidden)
}

// history is the consent's history window at now, narrowed by the purpose
// policy should the policy have tightened since the consent was granted.
func (h *dataHandler) history(cons *consent.Consent, now time.Time) historyWindow {
	start := h.purposes.HistoryStart(cons, now)
	return historyWindow{Start: start, Days: max(int(now.Sub(start)/purpose.Day), 0)}
}

// readFailed answers a data call whose read of customer data failed: 503
// service_unavailable, as when the database cannot answer the token check
// (an outage is not the client's fault, and a retry may succeed; a call
// answered from a remembered token state meets an outage here first).
// What failed goes to the log with the cause.
func readFailed(c *gin.Context, what string, err error) {
	WriteProblem(c, apperr.Wrap(apperr.Unavailable, "The data cannot be read right now; retry shortly.", fmt.Errorf("%s: %w", what, err)))
}
