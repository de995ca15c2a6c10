package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/consentgate/consentgate/internal/testutil"
)

// This file checks the Merkle tree endpoints (SPEC §13) with a verifier
// written here from RFC 9162 alone: plain crypto/sha256, none of the
// server's code and not the merkle library it uses.

func rfcLeaf(data []byte) []byte {
	h := sha256.Sum256(append([]byte{0x00}, data...))
	return h[:]
}

func rfcNode(l, r []byte) []byte {
	h := sha256.New()
	h.Write([]byte{0x01})
	h.Write(l)
	h.Write(r)
	return h.Sum(nil)
}

// rfcRoot is MTH of RFC 9162 §2.1.1, by its recursive definition.
func rfcRoot(leaves [][]byte) []byte {
	switch n := len(leaves); n {
	case 0:
		h := sha256.Sum256(nil)
		return h[:]
	case 1:
		return leaves[0]
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		return rfcNode(rfcRoot(leaves[:k]), rfcRoot(leaves[k:]))
	}
}

// rfcVerifyInclusion is RFC 9162 §2.1.3.2.
func rfcVerifyInclusion(index, size uint64, leaf []byte, path [][]byte, root []byte) error {
	if index >= size {
		return fmt.Errorf("leaf index %d not below size %d", index, size)
	}
	fn, sn, r := index, size-1, leaf
	for _, p := range path {
		if sn == 0 {
			return fmt.Errorf("path too long")
		}
		if fn&1 == 1 || fn == sn {
			r = rfcNode(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = rfcNode(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || !bytes.Equal(r, root) {
		return fmt.Errorf("path does not lead to the root")
	}
	return nil
}

// rfcVerifyConsistency is RFC 9162 §2.1.4.2.
func rfcVerifyConsistency(first, second uint64, path [][]byte, firstRoot, secondRoot []byte) error {
	if first == second {
		if len(path) != 0 || !bytes.Equal(firstRoot, secondRoot) {
			return fmt.Errorf("equal sizes need an empty proof and equal roots")
		}
		return nil
	}
	if first == 0 || first > second || len(path) == 0 {
		return fmt.Errorf("bad sizes or empty proof")
	}
	if first&(first-1) == 0 {
		path = append([][]byte{firstRoot}, path...)
	}
	fn, sn := first-1, second-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return fmt.Errorf("proof too long")
		}
		if fn&1 == 1 || fn == sn {
			fr, sr = rfcNode(c, fr), rfcNode(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = rfcNode(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || !bytes.Equal(fr, firstRoot) || !bytes.Equal(sr, secondRoot) {
		return fmt.Errorf("proof does not link the roots")
	}
	return nil
}

// canonicalOf rebuilds the canonical encoding docs/audit.md specifies from
// an event as the API shows it: every field but prev_hash and hash, keys
// sorted, scopes space-joined, no whitespace, no HTML escaping.
func canonicalOf(t *testing.T, ev map[string]any) []byte {
	t.Helper()
	m := map[string]any{}
	for k, v := range ev {
		switch k {
		case "prev_hash", "hash":
			continue
		case "scopes":
			var ss []string
			for _, s := range v.([]any) {
				ss = append(ss, s.(string))
			}
			m[k] = strings.Join(ss, " ")
		case "seq", "status":
			m[k] = json.Number(strconv.FormatInt(int64(v.(float64)), 10))
		default:
			m[k] = v
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return b
}

func unb64s(t *testing.T, ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = unb64(t, s)
	}
	return out
}

type apiTreeHead struct {
	TreeSize  uint64 `json:"tree_size"`
	RootHash  string `json:"root_hash"`
	Timestamp int64  `json:"timestamp"`
	KID       string `json:"kid"`
	Signature string `json:"signature"`
	Note      string `json:"note"`
}

// TestAuditProofsIndependentlyVerified: the signed tree head, every
// inclusion proof and the consistency proofs the API serves check out
// under the RFC 9162 algorithms written above, and the root equals the one
// recomputed from the exported events.
func TestAuditProofsIndependentlyVerified(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		tok := s.Authorize(t, testutil.DemoFlow())
		for range 3 {
			s.Get(t, "/v1/accounts", tok.AccessToken)
		}
		s.Get(t, "/v1/accounts/nope/balances", tok.AccessToken) // a refusal is a leaf too
		if _, err := s.Node.AuditCheckpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
		auditor := auditorToken(t, s)

		var page struct {
			Data []apiTreeHead `json:"data"`
		}
		s.Get(t, "/v1/audit/checkpoints?limit=1", auditor).JSON(t, &page)
		if len(page.Data) != 1 {
			t.Fatalf("checkpoints: %+v", page)
		}
		head := page.Data[0]
		size := head.TreeSize

		// The signature, with the JWKS key and crypto/ed25519 alone.
		var jwks struct {
			Keys []struct{ Kid, Kty, Crv, X string } `json:"keys"`
		}
		s.Get(t, "/jwks", "").JSON(t, &jwks)
		var pub ed25519.PublicKey
		for _, k := range jwks.Keys {
			if k.Kid == head.KID && k.Crv == "Ed25519" {
				pub, _ = base64.RawURLEncoding.DecodeString(k.X)
			}
		}
		text, _, ok := strings.Cut(head.Note, "\n\n")
		if pub == nil || !ok || !ed25519.Verify(pub, []byte(text+"\n"), unb64(t, head.Signature)) {
			t.Fatalf("tree head signature does not verify with the published key %q: %+v", head.KID, head)
		}
		origin := strings.TrimPrefix(s.URL, "http://") + "/audit"
		if want := fmt.Sprintf("%s\n%d\n%s\ntimestamp %d", origin, size, head.RootHash, head.Timestamp); text != want {
			t.Fatalf("note text %q, want %q", text, want)
		}

		// The root, from the events themselves.
		r := s.Get(t, "/v1/audit/events", auditor, "Accept", "application/x-ndjson")
		var leaves [][]byte
		for line := range strings.SplitSeq(strings.TrimSpace(string(r.Body)), "\n") {
			var ev map[string]any
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatal(err)
			}
			if uint64(ev["seq"].(float64)) <= size {
				leaves = append(leaves, rfcLeaf(canonicalOf(t, ev)))
			}
		}
		if uint64(len(leaves)) != size || base64.StdEncoding.EncodeToString(rfcRoot(leaves)) != head.RootHash {
			t.Fatalf("root of %d exported events differs from the signed root of %d", len(leaves), size)
		}

		// Every event's inclusion in the signed tree, and in smaller trees.
		for seq := uint64(1); seq <= size; seq++ {
			for _, ts := range []uint64{seq, size} {
				var p struct {
					Seq      uint64         `json:"seq"`
					TreeSize uint64         `json:"tree_size"`
					LeafHash string         `json:"leaf_hash"`
					RootHash string         `json:"root_hash"`
					Path     []string       `json:"inclusion_path"`
					Event    map[string]any `json:"event"`
				}
				r := s.Get(t, fmt.Sprintf("/v1/audit/proof/inclusion?seq=%d&tree_size=%d", seq, ts), auditor)
				r.JSON(t, &p)
				if r.StatusCode != http.StatusOK {
					t.Fatalf("inclusion %d in %d: %d %s", seq, ts, r.StatusCode, r.Body)
				}
				leaf := rfcLeaf(canonicalOf(t, p.Event))
				if !bytes.Equal(leaf, unb64(t, p.LeafHash)) || !bytes.Equal(leaf, leaves[seq-1]) {
					t.Fatalf("seq %d: leaf hash does not match its event", seq)
				}
				if !bytes.Equal(unb64(t, p.RootHash), rfcRoot(leaves[:ts])) {
					t.Fatalf("seq %d: root of tree %d is not the recomputed one", seq, ts)
				}
				if err := rfcVerifyInclusion(seq-1, ts, leaf, unb64s(t, p.Path), rfcRoot(leaves[:ts])); err != nil {
					t.Fatalf("inclusion of seq %d in tree %d: %v", seq, ts, err)
				}
				// A proof for another leaf does not pass for this one.
				if seq > 1 {
					if err := rfcVerifyInclusion(seq-2, ts, leaf, unb64s(t, p.Path), rfcRoot(leaves[:ts])); err == nil && ts > 1 {
						t.Fatalf("inclusion proof of seq %d also verifies at another index", seq)
					}
				}
			}
		}

		// Consistency of every smaller tree with the signed one.
		for first := uint64(1); first <= size; first++ {
			var p struct {
				FirstRoot  string   `json:"first_root_hash"`
				SecondRoot string   `json:"second_root_hash"`
				Path       []string `json:"consistency_path"`
			}
			r := s.Get(t, fmt.Sprintf("/v1/audit/proof/consistency?first=%d&second=%d", first, size), auditor)
			r.JSON(t, &p)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("consistency %d→%d: %d %s", first, size, r.StatusCode, r.Body)
			}
			if err := rfcVerifyConsistency(first, size, unb64s(t, p.Path), rfcRoot(leaves[:first]), unb64(t, head.RootHash)); err != nil {
				t.Fatalf("consistency %d→%d: %v", first, size, err)
			}
			if p.FirstRoot != base64.StdEncoding.EncodeToString(rfcRoot(leaves[:first])) || p.SecondRoot != head.RootHash {
				t.Fatalf("consistency %d→%d: roots %s %s", first, size, p.FirstRoot, p.SecondRoot)
			}
		}
	})
}

// TestAuditProofBadInput: every malformed proof request is a 400 that names
// the parameter; the endpoints need an auditor's token.
func TestAuditProofBadInput(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		tok := s.Authorize(t, testutil.DemoFlow())
		s.Get(t, "/v1/accounts", tok.AccessToken)
		if _, err := s.Node.AuditCheckpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
		auditor := auditorToken(t, s)
		var size int64
		if err := s.DB.Raw(`SELECT MAX(tree_size) FROM audit_tree_heads`).Row().Scan(&size); err != nil || size < 2 {
			t.Fatalf("tree size %d: %v", size, err)
		}
		beyond := strconv.FormatInt(size+1, 10)
		cases := map[string]string{
			"/v1/audit/proof/inclusion?tree_size=2":                          "seq is required",
			"/v1/audit/proof/inclusion?seq=1":                                "tree_size is required",
			"/v1/audit/proof/inclusion?seq=0&tree_size=2":                    "seq must be a positive integer",
			"/v1/audit/proof/inclusion?seq=x&tree_size=2":                    "seq must be a positive integer",
			"/v1/audit/proof/inclusion?seq=1&seq=2&tree_size=2":              "seq must be given at most once",
			"/v1/audit/proof/inclusion?seq=3&tree_size=2":                    "seq must be between 1 and tree_size",
			"/v1/audit/proof/inclusion?seq=1&tree_size=" + beyond:            "is beyond the log's tree",
			"/v1/audit/proof/consistency?first=2":                            "second is required",
			"/v1/audit/proof/consistency?first=-1&second=2":                  "first must be a positive integer",
			"/v1/audit/proof/consistency?first=2&second=1":                   "second must not be smaller than first",
			"/v1/audit/proof/consistency?first=1&second=" + beyond:           "is beyond the log's tree",
			"/v1/audit/checkpoints?limit=0":                                  "limit must be",
			"/v1/audit/checkpoints?cursor=abc":                               "cursor is malformed",
			"/v1/audit/proof/inclusion?seq=99999999999999999999&tree_size=2": "seq must be a positive integer",
		}
		keys := make([]string, 0, len(cases))
		for k := range cases {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, path := range keys {
			r := s.Get(t, path, auditor)
			code := "invalid_request"
			if strings.Contains(path, "cursor=") {
				code = "invalid_cursor"
			}
			problem(t, r, http.StatusBadRequest, code)
			if !strings.Contains(string(r.Body), cases[path]) {
				t.Errorf("%s: %s, want it to say %q", path, r.Body, cases[path])
			}
		}
		for _, path := range []string{"/v1/audit/checkpoints", "/v1/audit/proof/inclusion?seq=1&tree_size=1", "/v1/audit/proof/consistency?first=1&second=1"} {
			if r := s.Get(t, path, tok.AccessToken); r.StatusCode != http.StatusForbidden {
				t.Errorf("%s with a customer's token: %d", path, r.StatusCode)
			}
			if r := s.Get(t, path, ""); r.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s without a token: %d", path, r.StatusCode)
			}
		}
	})
}

// TestDashboardEntryProof: each entry of a grant's history links to a page
// proving it is in the signed log; the proof on it matches the auditor
// API's signed head and checks out under the RFC 9162 verifier above. Other
// customers, other grants and made-up entries get 404.
func TestDashboardEntryProof(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *testutil.Server) {
		tok := s.Authorize(t, testutil.DemoFlow())
		s.Get(t, "/v1/accounts", tok.AccessToken)
		alice := s.NewBrowser()
		loginBrowser(t, s, alice, "alice", "alice-password-1")
		page := alice.Get(t, "/dashboard/consents/"+tok.GrantID)
		links := regexp.MustCompile(`href="(/dashboard/consents/[^"/]+/proof/(\d+))"[^>]*>Verify this entry<`).FindAllStringSubmatch(string(page.Body), -1)
		if page.StatusCode != http.StatusOK || len(links) < 2 {
			t.Fatalf("grant page: %d, %d proof links\n%s", page.StatusCode, len(links), page.Body)
		}
		auditor := auditorToken(t, s)
		for _, l := range links {
			r := alice.Get(t, l[1])
			body := string(r.Body)
			if r.StatusCode != http.StatusOK || !strings.Contains(body, `data-verdict="verified"`) {
				t.Fatalf("%s: %d\n%s", l[1], r.StatusCode, body)
			}
			field := func(attr string) string {
				m := regexp.MustCompile(`<code ` + attr + `>([^<]*)</code>`).FindStringSubmatch(body)
				if m == nil {
					t.Fatalf("%s: no %s", l[1], attr)
				}
				return html.UnescapeString(m[1])
			}
			seq, _ := strconv.ParseUint(l[2], 10, 64)
			var path [][]byte
			for _, m := range regexp.MustCompile(`<li><code>([^<]*)</code></li>`).FindAllStringSubmatch(body, -1) {
				path = append(path, unb64(t, html.UnescapeString(m[1])))
			}
			// The root on the page is a signed head the auditor API serves.
			var size uint64
			for _, th := range checkpoints(t, s, auditor) {
				if th.RootHash == field("data-root") {
					size = uint64(th.TreeSize)
				}
			}
			if size == 0 {
				t.Fatalf("%s: root %s is not a signed head's", l[1], field("data-root"))
			}
			if err := rfcVerifyInclusion(seq-1, size, unb64(t, field("data-leaf")), path, unb64(t, field("data-root"))); err != nil {
				t.Fatalf("%s: %v", l[1], err)
			}
		}
		// Bob cannot open Alice's proof; Alice cannot open an entry of
		// another grant (the auditor's token event has no grant) or one that
		// does not exist.
		bob := s.NewBrowser()
		loginBrowser(t, s, bob, "bob", "bob-password-1")
		if r := bob.Get(t, links[0][1]); r.StatusCode != http.StatusNotFound {
			t.Errorf("bob on alice's proof: %d", r.StatusCode)
		}
		var other int64
		if err := s.DB.Raw(`SELECT MAX(seq) FROM audit_events WHERE grant_id <> ?`, tok.GrantID).Row().Scan(&other); err != nil {
			t.Fatal(err)
		}
		for _, seq := range []string{strconv.FormatInt(other, 10), "0", "x", "999999"} {
			if r := alice.Get(t, "/dashboard/consents/"+tok.GrantID+"/proof/"+seq); r.StatusCode != http.StatusNotFound {
				t.Errorf("proof of entry %s: %d", seq, r.StatusCode)
			}
		}
	})
}
