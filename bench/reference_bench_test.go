//go:build bench

package bench

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// startReference installs and starts oidc-provider (issue 18) for the
// whole run; without node or npm, or when it fails, the run goes on
// without it and says so loudly, on stderr and in the report.
func startReference(t *testing.T, rep *Report) *Reference {
	loud := func(err error) *Reference {
		msg := fmt.Sprintf("%s was NOT measured (%v): the token and introspection targets against it are n/a. "+
			"Install node (>= 20) and npm and run make bench again.", ReferenceVersion, err)
		fmt.Fprintf(os.Stderr, "\nbench: ********************************************************************\n"+
			"bench: %s\nbench: ********************************************************************\n\n", msg)
		rep.Notes = append(rep.Notes, "**"+msg+"**")
		return nil
	}
	if err := InstallReference(ReferenceDir); err != nil {
		return loud(err)
	}
	ref, err := StartReference(ReferenceDir)
	if err != nil {
		return loud(err)
	}
	t.Cleanup(ref.Stop)
	rep.Versions["reference"] = ReferenceVersion + " (node " + nodeVersion() + ", in memory, opaque tokens, one process)"
	fmt.Fprintf(os.Stderr, "bench: %s at %s\n", ReferenceVersion, ref.URL)
	return ref
}

// nodeVersion is node --version, or "?".
func nodeVersion() string {
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// refToken is the reference's token endpoint as a measured endpoint (none
// without a reference).
func refToken(ref *Reference) []endpoint {
	if ref == nil {
		return nil
	}
	return []endpoint{{name: EpRefToken, target: static(func(*site) vegeta.Target {
		method, u, body, hdr := ref.TokenRequest()
		return vegeta.Target{Method: method, URL: u, Body: body, Header: hdr}
	})}}
}

// refIntrospect is the reference's introspection of one of its own
// tokens, checked active first.
func refIntrospect(t *testing.T, ref *Reference) []endpoint {
	if ref == nil {
		return nil
	}
	return []endpoint{{name: EpRefIntrospect, target: static(func(*site) vegeta.Target {
		ctx := context.Background()
		tok, err := ref.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := ref.Active(ctx, tok); err != nil || !ok {
			t.Fatalf("%s introspection of its own token: active %v, %v", ReferenceVersion, ok, err)
		}
		method, u, body, hdr := ref.IntrospectRequest(tok)
		return vegeta.Target{Method: method, URL: u, Body: body, Header: hdr}
	})}}
}

// introspectTarget is our introspection of a fresh consent access token
// of gen-1 by the client it was issued to (demo-pfm, client_secret_basic),
// checked active first.
func introspectTarget(t *testing.T, s *site) vegeta.Target {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(s.flow.ClientID+":"+s.flow.ClientSecret))
	body := url.Values{"token": {s.token(t)}}.Encode()
	hdr := http.Header{"Authorization": {basic}, "Content-Type": {"application/x-www-form-urlencoded"}}
	req := s.srv.NewRequest(t, http.MethodPost, "/oauth2/introspect", strings.NewReader(body))
	req.Header = hdr.Clone()
	r := s.srv.Do(t, req)
	var in struct {
		Active  bool   `json:"active"`
		GrantID string `json:"grant_id"`
	}
	r.JSON(t, &in)
	if r.StatusCode != http.StatusOK || !in.Active || in.GrantID == "" {
		t.Fatalf("introspection of the consent token: %d %s", r.StatusCode, r.Body)
	}
	return vegeta.Target{Method: http.MethodPost, URL: s.srv.URL + "/oauth2/introspect", Body: []byte(body), Header: hdr}
}
