package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"
	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/store"
)

// grantJSON is the grant management view of a consent (SPEC §2).
type grantJSON struct {
	GrantID    string   `json:"grant_id"`
	Status     string   `json:"status"`
	ClientID   string   `json:"client_id"`
	Scopes     []string `json:"scopes"`
	Purpose    string   `json:"purpose"`
	AccountIDs []string `json:"account_ids"`
	CreatedAt  string   `json:"created_at"`
	ExpiresAt  *string  `json:"expires_at"`
}

// ownGrant authenticates the client and loads one of its grants. Another
// client's grant is "not found", exactly like a grant that does not exist.
// GET and DELETE have no form body, so a private_key_jwt client sends its
// assertion as query parameters (the access log records paths only, and an
// assertion is single use and short-lived).
func (p *Provider) ownGrant(c *gin.Context) (*consent.Consent, fosite.Client, error) {
	ctx := c.Request.Context()
	form := url.Values{}
	for _, k := range []string{"client_id", "client_assertion_type", "client_assertion"} {
		if v, ok := c.Request.URL.Query()[k]; ok {
			form[k] = v
		}
	}
	client, err := p.oauth.AuthenticateClient(ctx, c.Request, form)
	if err != nil {
		return nil, nil, err
	}
	id := c.Param("grant_id")
	if !cleanParam(id) {
		// No grant id holds such bytes, and PostgreSQL refuses them as text.
		return nil, client, fosite.ErrNotFound.WithHint("No such grant.")
	}
	g, err := p.consents.Get(ctx, id)
	if errors.Is(err, consent.ErrNotFound) || (err == nil && g.ClientID != client.GetID()) {
		return nil, client, fosite.ErrNotFound.WithHint("No such grant.")
	} else if err != nil {
		return nil, client, p.serverError(ctx, "grants: load", errors.Join(ErrStorage, err))
	}
	return g, client, nil
}

// handleGetGrant is GET /oauth2/grants/{grant_id}.
func (p *Provider) handleGetGrant(c *gin.Context) {
	g, _, err := p.ownGrant(c)
	if err != nil {
		p.oauth.WriteAccessError(c.Request.Context(), c.Writer, nil, unavailable(err))
		return
	}
	out := grantJSON{
		GrantID: g.ID, Status: string(g.StatusAt(p.now())), ClientID: g.ClientID,
		Scopes: nonNil(g.Scopes), Purpose: g.Purpose, AccountIDs: nonNil(g.AccountIDs),
		CreatedAt: g.CreatedAt.UTC().Format(time.RFC3339),
	}
	if g.ExpiresAt != nil {
		s := g.ExpiresAt.UTC().Format(time.RFC3339)
		out.ExpiresAt = &s
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

// handleDeleteGrant is DELETE /oauth2/grants/{grant_id}: the consent is
// revoked and every token of the grant ends with it. Deleting an already
// ended grant is not an error.
func (p *Provider) handleDeleteGrant(c *gin.Context) {
	ctx := c.Request.Context()
	g, client, err := p.ownGrant(c)
	if err != nil {
		p.oauth.WriteAccessError(ctx, c.Writer, nil, unavailable(err))
		return
	}
	if err := p.endGrant(ctx, g.ID, client.GetID(), g.CustomerID, "client"); err != nil {
		p.oauth.WriteAccessError(ctx, c.Writer, nil, p.serverError(ctx, "grants: revoke", errors.Join(ErrStorage, err)))
		return
	}
	c.Status(http.StatusNoContent)
}

// endGrant revokes a consent and all its tokens, and tells the audit log.
func (p *Provider) endGrant(ctx context.Context, grantID, clientID, customerID, by string) error {
	changed, err := p.consents.Revoke(ctx, grantID, by, p.now())
	if err != nil {
		return err
	}
	if err := p.store.revokeGrantTokens(ctx, grantID); err != nil {
		return err
	}
	if changed {
		p.emit(ctx, Event{Type: EventConsentRevoked, Reason: by, ClientID: clientID, CustomerID: customerID, GrantID: grantID})
		p.emit(ctx, Event{Type: EventTokenRevoked, Reason: by, ClientID: clientID, CustomerID: customerID, GrantID: grantID})
	}
	return nil
}

// renewGrant applies an approved grant_management_action=replace: the
// existing consent takes the new terms and accounts and starts a new term,
// and every token issued under the old terms ends, so none outreaches them.
// Only the customer who owns the grant can renew it.
func (p *Provider) renewGrant(ctx context.Context, ar fosite.Requester, d Decision) error {
	form := ar.GetRequestForm()
	pol, ok := p.purposes.Lookup(form.Get(paramPurpose))
	if !ok {
		return fmt.Errorf("renew grant: purpose %q left the policy table", form.Get(paramPurpose))
	}
	secs, err := strconv.ParseInt(form.Get(paramConsentDuration), 10, 64)
	if err != nil {
		return fmt.Errorf("renew grant: consent_duration: %w", err)
	}
	now := p.now()
	id := ar.GetID()
	return p.store.db.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE consents SET status = ?, scopes = ?, purpose = ?, history_days = ?, duration_seconds = ?,
				authorized_at = ?, expires_at = ?, updated_at = ?
			WHERE id = ? AND client_id = ? AND customer_id = ? AND status IN (?, ?)`,
			string(consent.Authorized), strings.Join(ar.GetRequestedScopes(), " "), pol.Code, pol.MaxHistoryDays, secs,
			store.Micros(now), store.Micros(now.Add(time.Duration(secs)*time.Second)), store.Micros(now),
			id, ar.GetClient().GetID(), d.CustomerID, string(consent.Authorized), string(consent.Expired))
		if res.Error != nil {
			return fmt.Errorf("renew grant: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("renew grant %s: not renewable by this customer: %w", id, consent.ErrNotAwaiting)
		}
		if err := tx.Exec(`DELETE FROM consent_accounts WHERE consent_id = ?`, id).Error; err != nil {
			return fmt.Errorf("renew grant: %w", err)
		}
		for _, a := range d.AccountIDs {
			res := tx.Exec(`INSERT INTO consent_accounts (consent_id, account_id)
				SELECT ?, id FROM accounts WHERE id = ? AND customer_id = ?`, id, a, d.CustomerID)
			if res.Error != nil {
				return fmt.Errorf("renew grant: %w", res.Error)
			}
			if res.RowsAffected != 1 {
				return consent.ErrForeignAccount
			}
		}
		// The old term's codes and tokens are deleted, not marked inactive:
		// fosite takes an inactive refresh token or code presented again for
		// reuse or replay and revokes the grant, so an app's stale token would
		// undo the customer's renewal. Deleted, they are merely unknown
		// (invalid_grant). The new term's code is stored after this runs.
		return tx.Exec(`DELETE FROM oauth_tokens WHERE request_id = ?`, id).Error
	})
}
