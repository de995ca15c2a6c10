package ingest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/store"
	"github.com/consentgate/consentgate/internal/testutil/testdb"
)

const aliceProfile = `{"id":"c1","display_name":"Alice","full_name":"Alice Anders","given_name":"Alice","family_name":"Anders",
	"email":"alice@example.com","phone_country_code":"1","phone_number":"5555550142",
	"address_line1":"742 Evergreen Terrace","address_city":"Springfield","address_region":"IL",
	"address_postal_code":"62704","address_country":"US"}`

// TestApplyProfilesAndNumbers: customer profiles and deposit accounts'
// payment numbers ride on customer and account records (docs/ingestion.md),
// are idempotent, and are left alone by records that do not carry them.
func TestApplyProfilesAndNumbers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		ids := identity.NewService(db, nil)
		if st := f.mustApply(t, "bank-a", KindCustomer, aliceProfile); st.Created != 1 {
			t.Fatalf("stats %+v, want 1 created", st)
		}
		cid := CustomerID("bank-a", "c1")
		p, err := ids.Profile(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		want := identity.Profile{CustomerID: cid, FullName: "Alice Anders", GivenName: "Alice", FamilyName: "Anders",
			Email: "alice@example.com", PhoneCountryCode: "1", PhoneNumber: "5555550142",
			Address: identity.Address{Line1: "742 Evergreen Terrace", City: "Springfield", Region: "IL", PostalCode: "62704", Country: "US"}}
		if *p != want || p.PhoneE164() != "+15555550142" {
			t.Fatalf("profile %+v, want %+v", *p, want)
		}
		if st := f.mustApply(t, "bank-a", KindCustomer, aliceProfile); st.Unchanged != 1 {
			t.Fatalf("same profile again: stats %+v, want 1 unchanged", st)
		}
		if st := f.mustApply(t, "bank-a", KindCustomer, strings.Replace(aliceProfile, "alice@example.com", "a.anders@example.com", 1)); st.Updated != 1 {
			t.Fatalf("new email: stats %+v, want 1 updated", st)
		}
		// A record without profile fields keeps the profile on record.
		f.mustApply(t, "bank-a", KindCustomer, `{"id":"c1","display_name":"Alice A."}`)
		if p, err := ids.Profile(ctx, cid); err != nil || p.Email != "a.anders@example.com" {
			t.Fatalf("profile after a record without one: %+v, %v", p, err)
		}
		if _, err := ids.Profile(ctx, CustomerID("bank-a", "nobody")); err != identity.ErrNoProfile {
			t.Fatalf("no profile: err %v, want ErrNoProfile", err)
		}

		checking := `{"id":"a1","customer_id":"c1","type":"checking","display_name":"Checking","last4":"4821","currency":"USD",
			"routing_number":"123456780","account_number_token":"990010004821"}`
		if st := f.mustApply(t, "bank-a", KindAccount, checking); st.Created != 1 {
			t.Fatalf("stats %+v", st)
		}
		n, err := f.acc.PaymentNumbers(ctx, AccountID("bank-a", "a1"))
		if err != nil || n.RoutingNumber != "123456780" || n.AccountNumberToken != "990010004821" {
			t.Fatalf("numbers %+v, %v", n, err)
		}
		if st := f.mustApply(t, "bank-a", KindAccount, checking); st.Unchanged != 1 {
			t.Fatalf("same numbers again: stats %+v, want 1 unchanged", st)
		}
		if st := f.mustApply(t, "bank-a", KindAccount, strings.Replace(checking, "990010004821", "990010004999", 1)); st.Updated != 1 {
			t.Fatalf("new token: stats %+v, want 1 updated", st)
		}
		if _, err := f.acc.PaymentNumbers(ctx, AccountID("bank-a", "nope")); err != accounts.ErrNotFound {
			t.Fatalf("no numbers: err %v", err)
		}
	})
}

// TestProfileAndNumberRefusals: each rule names the field to fix.
func TestProfileAndNumberRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.mustApply(t, "bank-a", KindCustomer, `{"id":"c1","display_name":"Alice"}`)
		for _, tc := range []struct {
			name, from, to, field, reason string
		}{
			{"no full name", `"full_name":"Alice Anders",`, ``, "full_name", "required"},
			{"no family name", `"family_name":"Anders",`, ``, "family_name", "required"},
			{"bad email", `alice@example.com`, `alice at example`, "email", "email address"},
			{"phone with letters", `5555550142`, `555-555-0142`, "phone_number", "digits only"},
			{"phone without country", `"phone_country_code":"1",`, ``, "phone_country_code", "country calling code"},
			{"address without city", `"address_city":"Springfield",`, ``, "address_city", "required"},
			{"lower-case country", `"US"`, `"us"`, "address_country", "ISO 3166-1"},
			{"card number in a name", `"full_name":"Alice Anders"`, `"full_name":"Alice 4111111111111111"`, "full_name", "card number"},
			{"card number in an address", `742 Evergreen Terrace`, `4111 1111 1111 1111`, "address_line1", "card number"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.apply(t, "bank-a", KindCustomer, strings.Replace(aliceProfile, tc.from, tc.to, 1))
				refused(t, err, 0, tc.field, tc.reason)
			})
		}
		acct := func(typ, numbers string) string {
			return `{"id":"a1","customer_id":"c1","type":"` + typ + `","display_name":"A","last4":"1234","currency":"USD"` + numbers + `}`
		}
		for _, tc := range []struct {
			name, rec, field, reason string
		}{
			{"card with numbers", acct("credit_card", `,"routing_number":"123456780","account_number_token":"99001234"`), "routing_number", "only checking and savings"},
			{"routing without token", acct("checking", `,"routing_number":"123456780"`), "account_number_token", "send both or neither"},
			{"token without routing", acct("savings", `,"account_number_token":"99001234"`), "routing_number", "send both or neither"},
			{"routing check digit", acct("checking", `,"routing_number":"123456789","account_number_token":"99001234"`), "routing_number", "check digit"},
			{"routing too short", acct("checking", `,"routing_number":"12345678","account_number_token":"99001234"`), "routing_number", "9-digit"},
			{"token too long", acct("checking", `,"routing_number":"123456780","account_number_token":"123456789012345678"`), "account_number_token", "4 to 17 digits"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.apply(t, "bank-a", KindAccount, tc.rec)
				refused(t, err, 0, tc.field, tc.reason)
			})
		}
		if n := f.count(t, "account_numbers"); n != 0 {
			t.Fatalf("%d numbers written by refused records", n)
		}
	})
}

// TestImportProfilesAndNumbers: consentgate import carries the same fields
// in both file formats.
func TestImportProfilesAndNumbers(t *testing.T) {
	files := map[string]string{
		FormatJSONL: `{"record_type":"institution","id":"bank-a","name":"Bank A"}
{"record_type":"customer","id":"c1","display_name":"Alice","full_name":"Alice Anders","given_name":"Alice","family_name":"Anders","email":"alice@example.com","phone_country_code":"1","phone_number":"5555550142","address_line1":"742 Evergreen Terrace","address_city":"Springfield","address_region":"IL","address_postal_code":"62704","address_country":"US"}
{"record_type":"account","id":"a1","customer_id":"c1","type":"checking","display_name":"Checking","last4":"4821","currency":"USD","routing_number":"123456780","account_number_token":"990017265031"}
`,
		FormatCSV: "record_type,id,name,display_name,full_name,given_name,family_name,email,phone_country_code,phone_number,address_line1,address_city,address_region,address_postal_code,address_country,customer_id,type,last4,currency,routing_number,account_number_token\n" +
			"institution,bank-a,Bank A,,,,,,,,,,,,,,,,,,\n" +
			"customer,c1,,Alice,Alice Anders,Alice,Anders,alice@example.com,1,5555550142,742 Evergreen Terrace,Springfield,IL,62704,US,,,,,,\n" +
			"account,a1,,Checking,,,,,,,,,,,,c1,checking,4821,USD,123456780,990017265031\n",
	}
	for format, content := range files {
		t.Run(format, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				svc := NewService(db, func() time.Time { return testNow })
				st, err := ImportFile(ctx, svc, "", format, strings.NewReader(content), nil)
				if err != nil || st.Created != 3 {
					t.Fatalf("import: %+v, %v", st, err)
				}
				p, err := identity.NewService(db, nil).Profile(ctx, CustomerID("bank-a", "c1"))
				if err != nil || p.FullName != "Alice Anders" || p.Address.City != "Springfield" || p.PhoneE164() != "+15555550142" {
					t.Fatalf("profile %+v, %v", p, err)
				}
				n, err := accounts.NewSQLStore(db).PaymentNumbers(ctx, AccountID("bank-a", "a1"))
				if err != nil || n.RoutingNumber != "123456780" || n.AccountNumberToken != "990017265031" {
					t.Fatalf("numbers %+v, %v", n, err)
				}
			})
		})
	}
}
