// Package witness is an auditor's independent check of a consentgate audit
// log (SPEC §13): it fetches the log's signed tree heads over the public
// auditor API, checks their signatures against the keys at jwks_uri, and
// proves with RFC 9162 consistency proofs that every head extends the
// heads it saw before, which it keeps in a state file. A log rewritten and
// re-signed by whoever holds the database and the keys no longer extends
// what the witness saw, and the witness says so.
//
// It trusts nothing the server says about the past: the roots it compares
// are the ones in its own state file, and the proofs are checked against
// them with the field's RFC 9162 verifier. It must not write to the log.
package witness

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/consentgate/consentgate/internal/audit"
)

// ErrInconsistent is wrapped by every error that means the log is not what
// the witness saw before, or not what its signatures say: the alarm.
var ErrInconsistent = errors.New("AUDIT LOG INCONSISTENT")

// State is what a witness keeps between runs: the newest head it verified
// (the anchor every later head must extend) and the first one (the point it
// started trusting from).
type State struct {
	Issuer    string          `json:"issuer"`
	Origin    string          `json:"origin"`
	First     *audit.TreeHead `json:"first,omitempty"`
	Latest    *audit.TreeHead `json:"latest,omitempty"`
	Checks    int64           `json:"checks"` // heads verified so far
	CheckedAt time.Time       `json:"checked_at"`
}

// LoadState reads the state file; a missing file is an empty state.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the operator names the state file
	if errors.Is(err, os.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("witness state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("witness state %s is not a witness state file: %w", path, err)
	}
	return &st, nil
}

// Save writes the state atomically (a temporary file renamed over it), so
// a crash never leaves a half-written anchor.
func (st *State) Save(path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("witness state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(append(b, '\n')); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("witness state: %w", err)
	}
	return nil
}

// Witness checks one log.
type Witness struct {
	Issuer       string // the server's issuer URL, no trailing slash
	ClientID     string // an auditor client (client_credentials, scope audit:read)
	ClientSecret string
	HTTP         *http.Client // nil: a client with a 30 s timeout
}

// Result says what one Check saw.
type Result struct {
	Heads    int             // heads fetched and verified this round
	Previous *audit.TreeHead // the anchor before this round (nil on the first)
	Latest   *audit.TreeHead // the anchor after it
}

// Check fetches the server's newest heads, verifies each against the keys
// at jwks_uri and against st.Latest (a consistency proof either way), and
// advances st to the newest. Any error wrapping ErrInconsistent is the
// alarm; other errors mean the check could not run (network, auth) and st
// is unchanged.
func (w *Witness) Check(ctx context.Context, st *State) (Result, error) {
	issuer := strings.TrimSuffix(w.Issuer, "/")
	origin := audit.Origin(issuer)
	if st.Issuer != "" && st.Issuer != issuer {
		return Result{}, fmt.Errorf("the state file is for %s, not %s", st.Issuer, issuer)
	}
	meta, err := w.metadata(ctx, issuer)
	if err != nil {
		return Result{}, err
	}
	var keys jose.JSONWebKeySet
	if err := w.getJSON(ctx, meta.JWKSURI, "", &keys); err != nil {
		return Result{}, fmt.Errorf("jwks: %w", err)
	}
	token, err := w.token(ctx, meta.TokenEndpoint)
	if err != nil {
		return Result{}, err
	}
	var page struct {
		Data []audit.TreeHead `json:"data"`
	}
	if err := w.getJSON(ctx, issuer+"/v1/audit/checkpoints?limit="+strconv.Itoa(audit.MaxTreeHeads), token, &page); err != nil {
		return Result{}, fmt.Errorf("checkpoints: %w", err)
	}
	heads := page.Data
	sort.Slice(heads, func(i, j int) bool { return heads[i].TreeSize < heads[j].TreeSize })
	for i := range heads {
		if heads[i].TreeSize < 1 {
			return Result{}, fmt.Errorf("%w: a signed head has tree size %d", ErrInconsistent, heads[i].TreeSize)
		}
		if err := audit.VerifyTreeHead(heads[i], origin, &keys); err != nil {
			return Result{}, fmt.Errorf("%w: %w", ErrInconsistent, err)
		}
	}
	res := Result{Heads: len(heads), Previous: st.Latest}
	anchor := st.Latest
	if anchor == nil {
		if len(heads) == 0 {
			return res, nil // nothing signed yet: nothing to anchor to
		}
		anchor = &heads[len(heads)-1] // trust on first use
	}
	// Heads below the anchor were checked by earlier rounds; the newest is
	// checked whatever its size, so a log cut back below the anchor shows.
	for i := range heads {
		if heads[i].TreeSize < anchor.TreeSize && i != len(heads)-1 {
			continue
		}
		if err := w.consistent(ctx, issuer, token, anchor, &heads[i]); err != nil {
			return Result{}, err
		}
	}
	if len(heads) > 0 && heads[len(heads)-1].TreeSize >= anchor.TreeSize {
		anchor = &heads[len(heads)-1]
	}
	if st.First == nil {
		st.First = anchor
	}
	st.Issuer, st.Origin, st.Latest = issuer, origin, anchor
	st.Checks += int64(len(heads))
	st.CheckedAt = time.Now().UTC()
	res.Latest = anchor
	return res, nil
}

// consistent proves that the smaller of anchor and th is a prefix of the
// larger, against the roots the witness holds, not ones the server sends.
func (w *Witness) consistent(ctx context.Context, issuer, token string, anchor, th *audit.TreeHead) error {
	older, newer := anchor, th
	if th.TreeSize < anchor.TreeSize {
		older, newer = th, anchor
	}
	if older.TreeSize == newer.TreeSize {
		if older.RootHash != newer.RootHash {
			return fmt.Errorf("%w: two signed heads of tree size %d with different roots (%s, %s): the log was forked or rewritten",
				ErrInconsistent, older.TreeSize, older.RootHash, newer.RootHash)
		}
		return nil
	}
	var p audit.ConsistencyProof
	u := fmt.Sprintf("%s/v1/audit/proof/consistency?first=%d&second=%d", issuer, older.TreeSize, newer.TreeSize)
	if err := w.getJSON(ctx, u, token, &p); err != nil {
		var he *httpError
		if errors.As(err, &he) && he.status == http.StatusBadRequest {
			return fmt.Errorf("%w: the log cannot prove that its tree of %d extends the tree of %d it signed before (%s): events were removed",
				ErrInconsistent, newer.TreeSize, older.TreeSize, he.body)
		}
		return fmt.Errorf("consistency proof: %w", err)
	}
	path := make([][]byte, len(p.Path))
	for i, s := range p.Path {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("%w: consistency proof element %d is not base64", ErrInconsistent, i)
		}
		path[i] = b
	}
	r1, err1 := base64.StdEncoding.DecodeString(older.RootHash)
	r2, err2 := base64.StdEncoding.DecodeString(newer.RootHash)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%w: a signed root is not base64", ErrInconsistent)
	}
	// Sizes are ≥ 1: Check refused heads with smaller ones.
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(older.TreeSize), uint64(newer.TreeSize), path, r1, r2); err != nil { // #nosec G115 -- both sizes ≥ 1
		return fmt.Errorf("%w: the signed tree of %d events (root %s) does not extend the signed tree of %d events (root %s): the log was rewritten (%v)",
			ErrInconsistent, newer.TreeSize, newer.RootHash, older.TreeSize, older.RootHash, err)
	}
	return nil
}

type serverMetadata struct {
	Issuer        string `json:"issuer"`
	JWKSURI       string `json:"jwks_uri"`
	TokenEndpoint string `json:"token_endpoint"`
}

func (w *Witness) metadata(ctx context.Context, issuer string) (*serverMetadata, error) {
	var m serverMetadata
	if err := w.getJSON(ctx, issuer+"/.well-known/oauth-authorization-server", "", &m); err != nil {
		return nil, fmt.Errorf("server metadata: %w", err)
	}
	if strings.TrimSuffix(m.Issuer, "/") != issuer || m.JWKSURI == "" || m.TokenEndpoint == "" {
		return nil, fmt.Errorf("server metadata names issuer %q (want %q), jwks_uri %q, token_endpoint %q", m.Issuer, issuer, m.JWKSURI, m.TokenEndpoint)
	}
	return &m, nil
}

func (w *Witness) token(ctx context.Context, endpoint string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"audit:read"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(w.ClientID), url.QueryEscape(w.ClientSecret))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := w.do(req, &tok); err != nil {
		return "", fmt.Errorf("token (client %s): %w", w.ClientID, err)
	}
	return tok.AccessToken, nil
}

type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

func (w *Witness) getJSON(ctx context.Context, u, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return w.do(req, v)
}

func (w *Witness) do(req *http.Request, v any) error {
	c := w.HTTP
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &httpError{status: resp.StatusCode, body: strings.TrimSpace(string(body))}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: %w", req.URL.Path, err)
	}
	return nil
}
