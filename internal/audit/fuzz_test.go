package audit

import (
	"net/url"
	"testing"

	"github.com/consentgate/consentgate/internal/apperr"
)

// FuzzParseFilter: any auditor query string is refused with
// invalid_request or yields a filter that validates, with since ≤ until.
func FuzzParseFilter(f *testing.F) {
	for _, q := range []string{"", "type=data.access", "outcome=denied", "type=nope", "since=2026-01-01T00:00:00Z",
		"since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "customer_id=cus_alice&client_id=demo-pfm",
		"since=yesterday", "type=data.access&type=token.issued", "grant_id=%00"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := ParseFilter(v)
		if err != nil {
			if c := apperr.As(err).Code; c != apperr.InvalidRequest {
				t.Fatalf("undocumented code %s for %q", c, raw)
			}
			return
		}
		if err := flt.Validate(); err != nil {
			t.Fatalf("ParseFilter accepted %q but the filter does not validate: %v", raw, err)
		}
		if flt.Since != nil && flt.Until != nil && flt.Since.After(*flt.Until) {
			t.Fatalf("since after until accepted: %q", raw)
		}
	})
}
