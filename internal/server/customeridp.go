package server

import (
	"github.com/consentgate/consentgate/internal/config"
	"github.com/consentgate/consentgate/internal/web"
)

// customerIDP is the bank's identity provider customers log in with, or
// nil without --customer-idp.
func customerIDP(cfg *config.Config) *web.IDP {
	if cfg.CustomerIDP == "" {
		return nil
	}
	return &web.IDP{Issuer: cfg.CustomerIDP, ClientID: cfg.CustomerIDPClientID, ClientSecret: cfg.CustomerIDPClientSecret,
		Claim: cfg.CustomerIDPClaim, RedirectURL: cfg.Issuer + "/login/idp/callback"}
}
