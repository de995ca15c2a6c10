package oauth

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/go-jose/go-jose/v4"
)

// Metadata is the RFC 8414 authorization server metadata document, with the
// FAPI 2.0, RFC 9207 and grant management fields and consentgate's
// purposes_supported.
type Metadata struct {
	Issuer                                    string   `json:"issuer"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	PushedAuthorizationRequestEndpoint        string   `json:"pushed_authorization_request_endpoint"`
	RequirePushedAuthorizationRequests        bool     `json:"require_pushed_authorization_requests"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	GrantManagementEndpoint                   string   `json:"grant_management_endpoint"`
	GrantManagementActionsSupported           []string `json:"grant_management_actions_supported"`
	ScopesSupported                           []string `json:"scopes_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	ResponseModesSupported                    []string `json:"response_modes_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported             []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	// The private_key_jwt assertion algorithms, per endpoint (RFC 8414 §2).
	TokenEndpointAuthSigningAlgs         []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthSigningAlgs []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthSigningAlgs    []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	// DPoPSigningAlgs are the DPoP proof algorithms (RFC 9449 §5.1).
	DPoPSigningAlgs                          []string `json:"dpop_signing_alg_values_supported"`
	AuthorizationResponseISSParameterSupport bool     `json:"authorization_response_iss_parameter_supported"`
	// Signed request objects (JAR) are not supported, so neither is the
	// request parameter.
	RequestParameterSupported bool `json:"request_parameter_supported"`
	// mTLS sender-constraining is not offered; DPoP is.
	TLSClientCertificateBoundAccessTokens bool     `json:"tls_client_certificate_bound_access_tokens"`
	PurposesSupported                     []string `json:"purposes_supported"`
	// RegistrationEndpoint is RFC 7591's endpoint, present only when a
	// directory is trusted (SPEC §11).
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
}

// Metadata returns the server's RFC 8414 document.
func (p *Provider) Metadata() Metadata {
	authMethods := []string{AuthPrivateKeyJWT, AuthClientSecretBasic}
	registration := ""
	if p.directory != nil {
		registration = p.issuer + "/oauth2/register"
	}
	return Metadata{
		RegistrationEndpoint:                      registration,
		Issuer:                                    p.issuer,
		AuthorizationEndpoint:                     p.issuer + "/oauth2/authorize",
		TokenEndpoint:                             p.issuer + "/oauth2/token",
		PushedAuthorizationRequestEndpoint:        p.issuer + "/oauth2/par",
		RequirePushedAuthorizationRequests:        true,
		IntrospectionEndpoint:                     p.issuer + "/oauth2/introspect",
		RevocationEndpoint:                        p.issuer + "/oauth2/revoke",
		JWKSURI:                                   p.issuer + "/jwks",
		GrantManagementEndpoint:                   p.issuer + "/oauth2/grants",
		GrantManagementActionsSupported:           []string{grantActionReplace},
		ScopesSupported:                           append([]string(nil), supportedScopes...),
		ResponseTypesSupported:                    []string{"code"},
		ResponseModesSupported:                    []string{"query"},
		GrantTypesSupported:                       []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials},
		CodeChallengeMethodsSupported:             []string{"S256"},
		TokenEndpointAuthMethodsSupported:         authMethods,
		IntrospectionEndpointAuthMethodsSupported: authMethods,
		RevocationEndpointAuthMethodsSupported:    authMethods,
		TokenEndpointAuthSigningAlgs:              SigningAlgs(),
		IntrospectionEndpointAuthSigningAlgs:      SigningAlgs(),
		RevocationEndpointAuthSigningAlgs:         SigningAlgs(),
		DPoPSigningAlgs:                           SigningAlgs(),
		AuthorizationResponseISSParameterSupport:  true,
		RequestParameterSupported:                 false,
		TLSClientCertificateBoundAccessTokens:     false,
		PurposesSupported:                         p.purposes.Codes(),
	}
}

// handleMetadata is GET /.well-known/oauth-authorization-server.
func (p *Provider) handleMetadata(c *gin.Context) {
	m, ok := p.liveMetadata(c)
	if !ok {
		return
	}
	c.Header("Cache-Control", "public, max-age=60")
	c.JSON(http.StatusOK, m)
}

// liveMetadata is Metadata with require_pushed_authorization_requests read
// from the database: false once any registered client is exempt from PAR
// (SPEC §2, §10), so every node says the same. A database failure answers
// 503 (ok false): guessing either way would misinform clients.
func (p *Provider) liveMetadata(c *gin.Context) (Metadata, bool) {
	m := p.Metadata()
	exempt, err := p.store.anyPAROptional(c.Request.Context())
	if err != nil {
		p.log.ErrorContext(c.Request.Context(), "oauth: metadata", "error", err)
		c.Header("Retry-After", "5")
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": "temporarily_unavailable",
			"error_description": "The server metadata cannot be read right now; retry shortly."})
		return m, false
	}
	m.RequirePushedAuthorizationRequests = !exempt
	return m, true
}

// handleJWKS is GET /jwks: the id_token key and the public keys of
// Deps.PublicKeys (audit checkpoints, webhooks). Access tokens are opaque
// (HMAC), so no access token key is here.
func (p *Provider) handleJWKS(c *gin.Context) {
	keys := []jose.JSONWebKey{p.idKey().Public}
	if p.keys != nil {
		for _, k := range p.keys() {
			// Only ever a public half, whatever the caller passed; the
			// id_token key once (a key ring passes it with its predecessors).
			if pub := k.Public(); pub.Valid() && pub.KeyID != keys[0].KeyID {
				keys = append(keys, pub)
			}
		}
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, jose.JSONWebKeySet{Keys: keys})
}
