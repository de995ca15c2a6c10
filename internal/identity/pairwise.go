package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/consentgate/consentgate/internal/store"
)

// pairwiseSaltSetting names the server_settings row holding the pairwise
// salt. It is generated once per deployment and never derived from
// CONSENTGATE_SECRET, so rotating that secret cannot change any subject a
// client has already seen.
const pairwiseSaltSetting = "pairwise_subject_salt"

// Pairwise computes pairwise subject identifiers (OpenID Connect Core §8.1):
// one opaque, stable string per customer per client. Every identifier of a
// customer that a client sees (id_token and userinfo sub, introspection sub,
// FDX customerId) is Subject(clientID, customerID), so two clients cannot
// join their data on our customer id. The audit log keeps the internal id.
type Pairwise struct {
	salt []byte
}

// LoadPairwise reads the deployment's pairwise salt, generating and storing
// it on first use. Every node on one database agrees on it: the insert is
// first-writer-wins and everyone reads the stored value back.
func LoadPairwise(ctx context.Context, db *store.DB) (*Pairwise, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("pairwise salt: %w", err)
	}
	v, err := db.SettingOnce(ctx, pairwiseSaltSetting, hex.EncodeToString(b))
	if err != nil {
		return nil, fmt.Errorf("pairwise salt: %w", err)
	}
	salt, err := hex.DecodeString(v)
	if err != nil || len(salt) < 32 {
		return nil, fmt.Errorf("pairwise salt: stored value is not 32 hex-encoded bytes")
	}
	return NewPairwise(salt), nil
}

// NewPairwise returns a Pairwise on a known salt (tests; LoadPairwise in a server).
func NewPairwise(salt []byte) *Pairwise { return &Pairwise{salt: append([]byte(nil), salt...)} }

// Subject is the identifier clientID sees for customerID: 43 characters of
// base64url, the same for every consent of that client, different for every
// other client, and never revealing the internal id.
func (p *Pairwise) Subject(clientID, customerID string) string {
	m := hmac.New(sha256.New, p.salt)
	// Length-prefix the client id so ("ab","c") and ("a","bc") never collide.
	_, _ = fmt.Fprintf(m, "%d:%s|%s", len(clientID), clientID, customerID)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
