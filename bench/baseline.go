package bench

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/httpapi"
)

// Baselines are the handlers the gated data API is compared with, mounted
// only inside the benchmark process:
//
//	GET /ungated/transactions?account_id=&from=&cursor=&limit=
//	    the same page query on the same store and database, rendered in the
//	    same JSON shape, behind the same global middleware, but without the
//	    gate: no token, no consent, no purpose check, no audit event;
//	GET /bare
//	    a constant small JSON answer from a bare gin engine: the framework's
//	    floor on this machine.
//
// They must never be mounted by a server that serves customers.
func Baselines(store accounts.Store, now func() time.Time) (ungated, bare http.Handler) {
	gin.SetMode(gin.ReleaseMode)
	u := gin.New()
	u.Use(httpapi.Middleware(slog.New(slog.DiscardHandler))...)
	u.GET("/ungated/transactions", func(c *gin.Context) { ungatedTransactions(c, store, now) })
	b := gin.New()
	b.GET("/bare", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	return u, b
}

func ungatedTransactions(c *gin.Context, store accounts.Store, now func() time.Time) {
	q := accounts.TxQuery{AccountID: c.Query("account_id"), To: now(), Limit: 100}
	q.From = q.To.Add(-90 * 24 * time.Hour)
	if s := c.Query("from"); s != "" {
		from, err := time.Parse(time.DateOnly, s)
		if err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": "from"})
			return
		}
		q.From = from
	}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			c.JSON(http.StatusBadRequest, gin.H{"error": "limit"})
			return
		}
		q.Limit = n
	}
	if s := c.Query("cursor"); s != "" {
		k, err := DecodeKey(s)
		if err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": "cursor"})
			return
		}
		q.After = &k
	}
	txs, next, err := store.Transactions(c.Request.Context(), q)
	if err != nil {
		c.JSON(http.StatusInternalServerError, gin.H{"error": "store"})
		return
	}
	// The data API's own writer renders the page, so that the baseline pays
	// for the same bytes, at the same cost, as the gated answer.
	var cursor *string
	if next != nil {
		s := EncodeKey(*next)
		cursor = &s
	}
	httpapi.WriteTransactionPage(c, txs, cursor)
}

// EncodeKey is the baseline's cursor: the keyset in clear (the data API's
// cursor is bound to the account and filters; the baseline needs no such
// protection).
func EncodeKey(k accounts.TxKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(k.TransactedAt.UnixMicro(), 10) + ":" + k.ID))
}

// DecodeKey reverses EncodeKey.
func DecodeKey(s string) (accounts.TxKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return accounts.TxKey{}, err
	}
	at, id, ok := strings.Cut(string(b), ":")
	micros, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || id == "" {
		return accounts.TxKey{}, errors.New("bench: bad cursor")
	}
	return accounts.TxKey{TransactedAt: time.UnixMicro(micros).UTC(), ID: id}, nil
}
