package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// rateLimited applies the client's rate limit (SPEC §11) to PAR and the
// token endpoint, before fosite runs: over it, 429 in RFC 6749 §5.2 shape
// (error rate_limited) with Retry-After, audited as a denied event of the
// kind the request would have produced (eventType).
//
// The client is the one the request authenticates as: for
// client_secret_basic the secret is checked first (one primary-key read and
// an HMAC), so nobody can spend another app's budget with its client_id
// alone; for private_key_jwt the client_id parameter counts (the assertion
// is verified, and its jti spent, only by the endpoint itself).
func (p *Provider) rateLimited(eventType string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if p.limit == nil {
			c.Next()
			return
		}
		id, cl := p.limitedClient(c.Request)
		if cl != nil {
			// fosite authenticates this client next: it reads the row this
			// request has just read instead of going to the database again.
			c.Request = c.Request.WithContext(withClientRow(c.Request.Context(), cl))
		}
		ctx := c.Request.Context()
		if id == "" {
			c.Next()
			return
		}
		wait, err := p.limit(ctx, id)
		if err != nil {
			p.log.Warn("rate limit: could not count the request", "client_id", id, "err", err)
			c.Header("Retry-After", "1")
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "temporarily_unavailable",
				"error_description": "The request could not be counted against the app's rate limit; retry shortly."})
			c.Abort()
			return
		}
		if wait <= 0 {
			c.Next()
			return
		}
		p.emit(ctx, Event{Type: eventType, Outcome: OutcomeDenied, Reason: "rate_limited", ClientID: id})
		c.Header("Retry-After", strconv.Itoa(max(1, int((wait+time.Second-1)/time.Second))))
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusTooManyRequests, gin.H{"error": "rate_limited",
			"error_description": "This app is over its rate limit of requests per second; retry after Retry-After seconds."})
		c.Abort()
	}
}

// limitedClient is the client a PAR or token request counts against, or ""
// when it authenticates as none (it will fail authentication anyway), and
// for client_secret_basic the client it read.
func (p *Provider) limitedClient(r *http.Request) (string, *Client) {
	rawID, rawSecret, basic := r.BasicAuth()
	if !basic {
		return r.PostForm.Get("client_id"), nil
	}
	id, err1 := url.QueryUnescape(rawID)
	secret, err2 := url.QueryUnescape(rawSecret)
	if errors.Join(err1, err2) != nil {
		return "", nil
	}
	cl, err := p.clientForSecret(r.Context(), id, secret)
	if err != nil {
		return "", nil
	}
	// The previous secret counts too while its grace period lasts, so a
	// rotation cannot open a way around the limit.
	if !p.secretMatches(r.Context(), cl, secret) {
		return "", cl
	}
	return id, cl
}

// clientMemoKey holds, in a request's context, the client row that request
// has read: its later reads of the same client use it. It lives as long as
// one request, so a suspension or rotation still shows on the next one.
type clientMemoKey struct{}

// withClientRow is ctx remembering the row c, read (not yet authenticated).
func withClientRow(ctx context.Context, c *Client) context.Context {
	return context.WithValue(ctx, clientMemoKey{}, c)
}

// clientRowFromRequest is the row of client id this request has read, or nil.
func clientRowFromRequest(ctx context.Context, id string) *Client {
	c, _ := ctx.Value(clientMemoKey{}).(*Client)
	if c == nil || c.ID != id {
		return nil
	}
	return c
}
