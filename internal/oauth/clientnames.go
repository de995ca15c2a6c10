package oauth

import (
	"context"
	"errors"
	"fmt"

	"github.com/consentgate/consentgate/internal/consent"
)

// ErrGrantNotFound is returned by RevokeGrant for a grant that does not
// exist or is not the customer's: the two are indistinguishable on purpose.
var ErrGrantNotFound = errors.New("oauth: no such grant for this customer")

// ClientNames returns the display names of the given clients, by id, for
// the customer's dashboard. Unknown ids are absent.
func (p *Provider) ClientNames(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct{ ID, Name string }
	if err := p.store.db.WithContext(ctx).Raw(`SELECT id, name FROM oauth_clients WHERE id IN ?`, ids).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("oauth.ClientNames: %w", err)
	}
	for _, r := range rows {
		out[r.ID] = r.Name
	}
	return out, nil
}

// RevokeGrant ends one of the customer's grants from outside OAuth (the
// dashboard): the consent is revoked with revokedBy recorded, every token of
// the grant stops working at once, and the audit log hears consent.revoked,
// exactly as when the app deletes the grant. Revoking an ended grant again
// changes nothing and is not an error.
func (p *Provider) RevokeGrant(ctx context.Context, grantID, customerID, revokedBy string) error {
	g, err := p.consents.Get(ctx, grantID)
	if errors.Is(err, consent.ErrNotFound) || (err == nil && (customerID == "" || g.CustomerID != customerID)) {
		return ErrGrantNotFound
	} else if err != nil {
		return fmt.Errorf("oauth.RevokeGrant: %w", err)
	}
	if err := p.endGrant(ctx, g.ID, g.ClientID, customerID, revokedBy); err != nil {
		return fmt.Errorf("oauth.RevokeGrant: %w", err)
	}
	return nil
}
