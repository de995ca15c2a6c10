package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/demo"
	"github.com/consentgate/consentgate/internal/httpapi"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/oauth"
	"github.com/consentgate/consentgate/internal/web"
)

// The domain packages each declare the small interface they need; these
// adapters let the authorization server satisfy them without the packages
// importing one another.

// webAuthorizer lets the consent screen hand its decision to the
// authorization server.
type webAuthorizer struct{ p *oauth.Provider }

func (a webAuthorizer) PendingAuthorization(ctx context.Context, challenge string) (*web.Pending, error) {
	p, err := a.p.PendingAuthorization(ctx, challenge)
	if err != nil {
		return nil, webErr(err)
	}
	return &web.Pending{Challenge: p.Challenge, GrantID: p.GrantID, ClientID: p.ClientID, ClientName: p.ClientName,
		Purpose: p.Purpose, Scopes: p.Scopes, HistoryDays: p.HistoryDays, Duration: p.Duration, Aggregator: p.Aggregator}, nil
}

func (a webAuthorizer) FinishAuthorization(ctx context.Context, w http.ResponseWriter, r *http.Request, challenge string, d web.Decision) error {
	return webErr(a.p.FinishAuthorization(ctx, w, r, challenge,
		oauth.Decision{Approve: d.Approve, CustomerID: d.CustomerID, AccountIDs: d.AccountIDs, AuthTime: d.AuthTime}))
}

func webErr(err error) error {
	if errors.Is(err, oauth.ErrUnknownChallenge) {
		return errors.Join(web.ErrUnknownChallenge, err)
	}
	return err
}

// dataAuthenticator lets the data API authenticate bearer tokens.
type dataAuthenticator struct{ p *oauth.Provider }

func (a dataAuthenticator) Authenticate(ctx context.Context, r *http.Request) (*httpapi.Principal, error) {
	acc, err := a.p.AuthenticateAccess(ctx, r)
	if err != nil {
		var te *oauth.TokenError
		if errors.As(err, &te) {
			return nil, &httpapi.TokenError{Status: te.Status, Code: te.Code, Description: te.Description,
				Scheme: te.Scheme, Nonce: te.Nonce, Algs: te.Algs}
		}
		return nil, apperr.Wrap(apperr.Unavailable, "The token cannot be checked right now; retry shortly.", err)
	}
	return &httpapi.Principal{GrantID: acc.GrantID, ClientID: acc.ClientID, CustomerID: acc.CustomerID,
		Scopes: acc.Scopes, Purpose: acc.Purpose, Consent: acc.Consent}, nil
}

// demoClients lets the demo fixtures register their clients.
type demoClients struct{ p *oauth.Provider }

func (c demoClients) ClientExists(ctx context.Context, id string) (bool, error) {
	return c.p.ClientExists(ctx, id)
}

func (c demoClients) CreateClient(ctx context.Context, s demo.ClientSpec) (string, string, error) {
	return c.p.CreateClient(ctx, oauth.ClientSpec(s))
}

// customerClaims gives the userinfo endpoint the customer's OpenID Connect
// claims: name and email from the profile the bank's provider reported,
// the login display name as the name when it reported none.
type customerClaims struct{ id *identity.Service }

func (c customerClaims) CustomerClaims(ctx context.Context, customerID string) (httpapi.CustomerClaims, error) {
	var out httpapi.CustomerClaims
	switch prof, err := c.id.Profile(ctx, customerID); {
	case err == nil:
		out = httpapi.CustomerClaims{Name: prof.FullName, Email: prof.Email}
	case !errors.Is(err, identity.ErrNoProfile):
		return out, err
	}
	if out.Name != "" {
		return out, nil
	}
	cust, err := c.id.Customer(ctx, customerID)
	if errors.Is(err, identity.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	out.Name = cust.DisplayName
	return out, nil
}
