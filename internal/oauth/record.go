package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"time"

	"github.com/ory/fosite"
)

// record is the stored form of a fosite request: everything needed to
// rebuild it except the client, which is loaded fresh (a client whose
// registration changed or vanished must not keep working from a snapshot).
type record struct {
	ID              string          `json:"id"`
	ClientID        string          `json:"client_id"`
	RequestedAt     time.Time       `json:"requested_at"`
	Scopes          []string        `json:"scopes"`
	GrantedScopes   []string        `json:"granted_scopes"`
	Audience        []string        `json:"audience,omitempty"`
	GrantedAudience []string        `json:"granted_audience,omitempty"`
	Form            url.Values      `json:"form"`
	Session         json.RawMessage `json:"session"`
	// Authorize is set for authorization requests (PAR, authorize sessions).
	Authorize *authorizeRecord `json:"authorize,omitempty"`

	// session is Session decoded once, by parseRecord: a record never
	// changes, and a node keeps the records of the tokens it checks
	// (tokencache.go), so a data call's token check copies it instead of
	// decoding the JSON again, which was 60 % of that check's CPU.
	session *Session
}

type authorizeRecord struct {
	ResponseTypes       []string `json:"response_types"`
	RedirectURI         string   `json:"redirect_uri"`
	State               string   `json:"state"`
	ResponseMode        string   `json:"response_mode"`
	DefaultResponseMode string   `json:"default_response_mode"`
}

// secretFormKeys never reach the database: credentials and tokens a client
// may have put in a form fosite keeps whole (PAR, authorize requests).
var secretFormKeys = []string{"client_secret", "client_assertion", "code_verifier", "refresh_token", "code", "token", "password"}

func encodeRequest(req fosite.Requester) (string, error) {
	form := url.Values{}
	for k, v := range req.GetRequestForm() {
		form[k] = append([]string(nil), v...)
	}
	for _, k := range secretFormKeys {
		form.Del(k)
	}
	var sess json.RawMessage = []byte("null")
	if s := req.GetSession(); s != nil {
		b, err := json.Marshal(s)
		if err != nil {
			return "", fmt.Errorf("encode session: %w", err)
		}
		sess = b
	}
	rec := record{
		ID: req.GetID(), RequestedAt: req.GetRequestedAt().UTC(),
		Scopes: req.GetRequestedScopes(), GrantedScopes: req.GetGrantedScopes(),
		Audience: req.GetRequestedAudience(), GrantedAudience: req.GetGrantedAudience(),
		Form: form, Session: sess,
	}
	if c := req.GetClient(); c != nil {
		rec.ClientID = c.GetID()
	}
	if ar, ok := req.(fosite.AuthorizeRequester); ok {
		a := &authorizeRecord{
			ResponseTypes: ar.GetResponseTypes(), State: ar.GetState(),
			ResponseMode: string(ar.GetResponseMode()), DefaultResponseMode: string(ar.GetDefaultResponseMode()),
		}
		if u := ar.GetRedirectURI(); u != nil {
			a.RedirectURI = u.String()
		}
		rec.Authorize = a
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	return string(b), nil
}

// decodeRequest rebuilds a request, with its client loaded fresh.
func (s *fositeStore) decodeRequest(ctx context.Context, data string, sess fosite.Session) (fosite.Requester, error) {
	rec, err := parseRecord(data)
	if err != nil {
		return nil, err
	}
	client, err := s.GetClient(ctx, rec.ClientID)
	if err != nil {
		return nil, err
	}
	return rec.request(sess, client)
}

func parseRecord(data string) (*record, error) {
	var rec record
	if err := json.Unmarshal([]byte(data), &rec); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	if len(rec.Session) > 0 && string(rec.Session) != "null" {
		rec.session = &Session{}
		if err := json.Unmarshal(rec.Session, rec.session); err != nil {
			return nil, fmt.Errorf("decode session: %w", err)
		}
	}
	return &rec, nil
}

// request rebuilds the fosite request of rec for client. The stored session
// is decoded into sess when given (fosite hands in the session to hydrate;
// decoding merges, so expiry times fosite already set on it for new tokens
// survive) or into a new Session otherwise. An empty *Session, what a token
// check hands in, gets a copy of the session parseRecord decoded: the same
// as decoding into it. Authorization requests come back as
// *fosite.AuthorizeRequest.
func (rec *record) request(sess fosite.Session, client fosite.Client) (fosite.Requester, error) {
	if sess == nil {
		sess = &Session{}
	}
	switch s, ok := sess.(*Session); {
	case ok && s != nil && rec.session != nil && reflect.ValueOf(s).Elem().IsZero():
		*s = *rec.session.Clone().(*Session)
	case len(rec.Session) > 0 && string(rec.Session) != "null":
		if err := json.Unmarshal(rec.Session, sess); err != nil {
			return nil, fmt.Errorf("decode session: %w", err)
		}
	}
	// A record may be shared by concurrent requests (tokencache.go): the
	// request gets its own copies of everything fosite may change.
	form := make(url.Values, len(rec.Form))
	for k, v := range rec.Form {
		form[k] = slices.Clone(v)
	}
	req := fosite.Request{
		ID: rec.ID, RequestedAt: rec.RequestedAt, Client: client,
		RequestedScope: slices.Clone(rec.Scopes), GrantedScope: slices.Clone(rec.GrantedScopes),
		RequestedAudience: slices.Clone(rec.Audience), GrantedAudience: slices.Clone(rec.GrantedAudience),
		Form: form, Session: sess,
	}
	if rec.Authorize == nil {
		return &req, nil
	}
	ar := &fosite.AuthorizeRequest{
		ResponseTypes: rec.Authorize.ResponseTypes, State: rec.Authorize.State,
		ResponseMode:         fosite.ResponseModeType(rec.Authorize.ResponseMode),
		DefaultResponseMode:  fosite.ResponseModeType(rec.Authorize.DefaultResponseMode),
		HandledResponseTypes: fosite.Arguments{},
		Request:              req,
	}
	if rec.Authorize.RedirectURI != "" {
		u, err := url.Parse(rec.Authorize.RedirectURI)
		if err != nil {
			return nil, fmt.Errorf("decode redirect_uri: %w", err)
		}
		ar.RedirectURI = u
	}
	return ar, nil
}

// hashKey is how signatures, request_uris and challenges are stored: their
// hex SHA-256, so the database never holds a usable credential.
func hashKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
