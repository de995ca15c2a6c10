package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/consentgate/consentgate/internal/config"
)

// signingAlgs are the JWS algorithms accepted for client assertions and
// DPoP proofs (FAPI 2.0 §5.4.1: PS256, ES256 and EdDSA). RS256, the HMAC
// algorithms and "none" are never accepted: go-jose refuses any algorithm
// not on this list before looking at a key.
var signingAlgs = []jose.SignatureAlgorithm{jose.PS256, jose.ES256, jose.EdDSA}

// SigningAlgs returns the names of the accepted JWS algorithms, for the
// server metadata and WWW-Authenticate challenges.
func SigningAlgs() []string {
	out := make([]string, len(signingAlgs))
	for i, a := range signingAlgs {
		out[i] = string(a)
	}
	return out
}

// Limits of client key sets.
const (
	maxJWKSKeys     = 20
	jwksFetchLimit  = 64 << 10
	jwksFetchTime   = 5 * time.Second
	jwksCacheTTL    = 5 * time.Minute
	jwksMinRefetch  = 30 * time.Second // an unknown kid refetches at most this often
	minRSAKeyLength = 2048
)

// keyAlg is the one JWS algorithm a public key may sign with here: PS256
// for RSA of at least 2048 bits, ES256 for P-256, EdDSA for Ed25519. A key
// signs with one algorithm only, so a signature can never be checked under
// an algorithm the key was not made for.
func keyAlg(key any) (jose.SignatureAlgorithm, bool) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return jose.PS256, k.N.BitLen() >= minRSAKeyLength
	case *ecdsa.PublicKey:
		return jose.ES256, k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return jose.EdDSA, len(k) == ed25519.PublicKeySize
	}
	return "", false
}

// parseJWKS reads a client's key set and refuses anything but public
// signing keys this server can verify.
func parseJWKS(b []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("the JWKS is not a JSON Web Key Set: %w", err)
	}
	if len(set.Keys) == 0 || len(set.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("the JWKS must hold between 1 and %d keys", maxJWKSKeys)
	}
	for i, k := range set.Keys {
		name := k.KeyID
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		if !k.Valid() || !k.IsPublic() {
			return nil, fmt.Errorf("JWKS key %s must be a valid public key (no private parts)", name)
		}
		alg, ok := keyAlg(k.Key)
		if !ok {
			return nil, fmt.Errorf("JWKS key %s: only RSA (≥ %d bits, PS256), EC P-256 (ES256) and Ed25519 (EdDSA) keys are supported", name, minRSAKeyLength)
		}
		if k.Algorithm != "" && k.Algorithm != string(alg) {
			return nil, fmt.Errorf("JWKS key %s: alg %q is not supported for this key; use %s", name, k.Algorithm, alg)
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, fmt.Errorf("JWKS key %s: use must be sig", name)
		}
	}
	return &set, nil
}

// checkJWKSURI validates a registered jwks_uri: https, or http on loopback
// (development and tests).
func checkJWKSURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("jwks_uri %q must be an absolute URL without credentials or fragment", raw)
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !config.IsLoopback(u.Hostname())) {
		return fmt.Errorf("jwks_uri %q must use https (http only on loopback)", raw)
	}
	return nil
}

// verificationKeys returns the client's keys that may have made a
// signature with header kid and alg: the registered JWKS, or the set at the
// client's jwks_uri (cached, fetched again once when the kid is unknown, so
// a client can rotate keys without re-registering).
func (p *Provider) verificationKeys(ctx context.Context, c *Client, kid, alg string) ([]jose.JSONWebKey, error) {
	var set *jose.JSONWebKeySet
	var err error
	switch {
	case len(c.JWKS) > 0:
		set, err = parseJWKS(c.JWKS)
	case c.JWKSURI != "":
		set, err = p.jwks.get(ctx, c.JWKSURI, false)
		if err == nil && kid != "" && len(matchingKeys(set, kid, alg)) == 0 {
			set, err = p.jwks.get(ctx, c.JWKSURI, true)
		}
	default:
		err = errors.New("no keys registered")
	}
	if err != nil {
		return nil, err
	}
	return matchingKeys(set, kid, alg), nil
}

func matchingKeys(set *jose.JSONWebKeySet, kid, alg string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range set.Keys {
		if ka, ok := keyAlg(k.Key); ok && string(ka) == alg && (kid == "" || k.KeyID == kid) {
			out = append(out, k)
		}
	}
	return out
}

// jwksCache fetches and caches the key sets at clients' jwks_uris. It is
// per node: each node fetches for itself, which is cheap and keeps no shared
// state that could go stale everywhere at once.
type jwksCache struct {
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]jwksEntry
}

type jwksEntry struct {
	set     *jose.JSONWebKeySet
	fetched time.Time
}

func newJWKSCache(now func() time.Time) *jwksCache {
	return &jwksCache{
		now:     now,
		entries: map[string]jwksEntry{},
		client: &http.Client{
			Timeout: jwksFetchTime,
			// A key set is where it was registered; a redirect elsewhere is refused.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// get returns the set at uri from the cache while it is fresh; refresh asks
// for a new fetch, granted at most every jwksMinRefetch.
func (c *jwksCache) get(ctx context.Context, uri string, refresh bool) (*jose.JSONWebKeySet, error) {
	c.mu.Lock()
	e, ok := c.entries[uri]
	c.mu.Unlock()
	age := c.now().Sub(e.fetched)
	if ok && age < jwksCacheTTL && (!refresh || age < jwksMinRefetch) {
		return e.set, nil
	}
	set, err := c.fetch(ctx, uri)
	if err != nil {
		if ok && age < jwksCacheTTL {
			return e.set, nil // keep serving what was good a moment ago
		}
		return nil, err
	}
	c.mu.Lock()
	c.entries[uri] = jwksEntry{set: set, fetched: c.now()}
	c.mu.Unlock()
	return set, nil
}

func (c *jwksCache) fetch(ctx context.Context, uri string) (*jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTime)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks_uri: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksFetchLimit+1))
	if err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	if len(body) > jwksFetchLimit {
		return nil, fmt.Errorf("jwks_uri: key set larger than %d bytes", jwksFetchLimit)
	}
	set, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	return set, nil
}
