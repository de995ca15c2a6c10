package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil"
)

// readmeSampleDay is when the README's sample was taken (a demo seeded
// that day).
var readmeSampleDay = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// TestReadmeSampleTransaction (issue 14 item 12): the transaction the
// README's walkthrough shows is one the demo really returns for alice's
// checking account, field for field. The demo's history ends on the day
// it is seeded, so which transaction comes first changes with the day: the
// server runs on a clock at readmeSampleDay.
func TestReadmeSampleTransaction(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var sample map[string]any
	for line := range strings.SplitSeq(string(readme), "\n") {
		rest, ok := strings.CutPrefix(line, `# {"data":[{"transaction_id"`)
		if !ok {
			continue
		}
		obj, _, _ := strings.Cut(`{"transaction_id"`+rest, "},")
		if err := json.Unmarshal([]byte(obj+"}"), &sample); err != nil {
			t.Fatalf("README sample %q: %v", obj, err)
		}
	}
	if sample == nil {
		t.Fatal("the README shows no sample transaction")
	}

	s := testutil.Start(t, store.SQLite, testutil.Options{Clock: testutil.ClockAt(readmeSampleDay)})
	tok := s.Authorize(t, testutil.DemoFlow())
	var page struct {
		Data []map[string]any `json:"data"`
	}
	r := s.Get(t, "/v1/accounts/"+sample["account_id"].(string)+"/transactions?limit=1", tok.AccessToken)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("transactions: %d %s", r.StatusCode, r.Body)
	}
	r.JSON(t, &page)
	if len(page.Data) != 1 {
		t.Fatalf("no transaction: %s", r.Body)
	}
	got := page.Data[0]
	if len(got) != len(sample) {
		t.Errorf("fields: demo %v, README %v", got, sample)
	}
	for k, v := range sample {
		if got[k] != v {
			t.Errorf("%s: the demo returns %v, the README shows %v", k, got[k], v)
		}
	}
}
