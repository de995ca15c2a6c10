package oauth

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"github.com/consentgate/consentgate/internal/store"
)

// OpenIDConfiguration is the OpenID Connect Discovery 1.0 document: the
// RFC 8414 metadata plus what a relying party needs for OpenID Connect.
type OpenIDConfiguration struct {
	Metadata
	UserinfoEndpoint string `json:"userinfo_endpoint"`
	// Subjects are pairwise: one per customer per client (SPEC §10).
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
	ClaimsParameterSupported         bool     `json:"claims_parameter_supported"`
	RequestURIParameterSupported     bool     `json:"request_uri_parameter_supported"`
}

// OpenIDConfiguration returns the discovery document for the given RFC 8414
// metadata.
func (p *Provider) OpenIDConfiguration(m Metadata) OpenIDConfiguration {
	return OpenIDConfiguration{
		Metadata:                         m,
		UserinfoEndpoint:                 p.issuer + "/userinfo",
		SubjectTypesSupported:            []string{"pairwise"},
		IDTokenSigningAlgValuesSupported: []string{p.idKey().Public.Algorithm},
		ClaimsSupported:                  []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "name", "email"},
		ClaimsParameterSupported:         false,
		// request_uri is the one a pushed request returns (RFC 9126 §4).
		RequestURIParameterSupported: true,
	}
}

// handleOpenIDConfiguration is GET /.well-known/openid-configuration.
func (p *Provider) handleOpenIDConfiguration(c *gin.Context) {
	m, ok := p.liveMetadata(c)
	if !ok {
		return
	}
	c.Header("Cache-Control", "public, max-age=60")
	c.JSON(http.StatusOK, p.OpenIDConfiguration(m))
}

// anyPAROptional reports whether any registered client is exempt from PAR
// (one probe of a partial index).
func (s *fositeStore) anyPAROptional(ctx context.Context) (bool, error) {
	cond := "par_optional"
	if s.db.Dialect == store.SQLite {
		cond = "par_optional = 1" // the partial index's own condition
	}
	var ids []string
	if err := s.db.WithContext(ctx).Raw(`SELECT id FROM oauth_clients WHERE ` + cond + ` LIMIT 1`).Scan(&ids).Error; err != nil {
		return false, dbErr("par exemption", err)
	}
	return len(ids) > 0, nil
}

// frontChannelKey marks the context of a front-channel authorization
// request of a PAR-exempt client.
type frontChannelKey struct{}

// parConfig is fosite's configuration with PAR enforced everywhere except
// on the front channel of a client registered as exempt (RFC 9126 §6
// require_pushed_authorization_requests: false): fosite knows only the
// server-wide switch, so the exemption is decided per request.
type parConfig struct {
	*fosite.Config
}

// EnforcePushedAuthorize implements fosite.PushedAuthorizeRequestConfigProvider.
func (c *parConfig) EnforcePushedAuthorize(ctx context.Context) bool {
	if exempt, _ := ctx.Value(frontChannelKey{}).(bool); exempt {
		return false
	}
	return c.Config.EnforcePushedAuthorize(ctx)
}
