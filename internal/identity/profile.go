package identity

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/consentgate/consentgate/internal/store"
)

// Profile is what the bank knows of a customer's identity and hands to
// clients the customer allowed to see it (FDX contact under identity:read;
// OpenID Connect name and email). Optional parts are "" when unknown.
type Profile struct {
	CustomerID string
	FullName   string // as the customer is addressed: "Alice Anders"
	GivenName  string
	FamilyName string
	Email      string // optional
	// The phone in two parts, so that neither side has to split an E.164
	// number: the ITU-T country calling code ("1") and the national number.
	PhoneCountryCode string // optional, with PhoneNumber
	PhoneNumber      string
	Address          Address // optional: zero when unknown
}

// Address is a postal address; Line1, City and Country are required when
// any part is given.
type Address struct {
	Line1, Line2, City, Region, PostalCode string
	Country                                string // ISO 3166-1 alpha-2
}

// IsZero reports whether no part of the address is known.
func (a Address) IsZero() bool { return a == Address{} }

// PhoneE164 is the phone in E.164 form ("+14155550123"), or "".
func (p Profile) PhoneE164() string {
	if p.PhoneNumber == "" {
		return ""
	}
	return "+" + p.PhoneCountryCode + p.PhoneNumber
}

// ErrNoProfile is returned for a customer without a profile on record.
var ErrNoProfile = errors.New("identity: no profile on record for this customer")

// ProfileError names the field of a profile that breaks a rule, by the name
// providers send it under (docs/ingestion.md).
type ProfileError struct {
	Field, Reason string
}

func (e *ProfileError) Error() string { return "profile: " + e.Field + ": " + e.Reason }

// Profile field limits.
const (
	maxProfileName = 200
	maxAddressPart = 64 // FDX String64
	maxEmail       = 254
)

// Validate returns the first rule p breaks, or nil.
func (p Profile) Validate() *ProfileError {
	text := func(field, s string, max int, required bool) *ProfileError {
		switch {
		case s == "" && required:
			return &ProfileError{field, "required"}
		case !utf8.ValidString(s):
			return &ProfileError{field, "not valid UTF-8"}
		case len(s) > max:
			return &ProfileError{field, fmt.Sprintf("longer than %d bytes", max)}
		case strings.IndexFunc(s, unicode.IsControl) >= 0:
			return &ProfileError{field, "contains control characters"}
		case strings.TrimSpace(s) != s:
			return &ProfileError{field, "leading or trailing white space"}
		}
		return nil
	}
	a := p.Address
	for _, f := range []struct {
		field, value string
		max          int
		required     bool
	}{
		{"full_name", p.FullName, maxProfileName, true},
		{"given_name", p.GivenName, maxProfileName, true},
		{"family_name", p.FamilyName, maxProfileName, true},
		{"address_line1", a.Line1, maxAddressPart, !a.IsZero()},
		{"address_line2", a.Line2, maxAddressPart, false},
		{"address_city", a.City, maxAddressPart, !a.IsZero()},
		{"address_region", a.Region, maxAddressPart, false},
		{"address_postal_code", a.PostalCode, 10, false},
	} {
		if e := text(f.field, f.value, f.max, f.required); e != nil {
			return e
		}
	}
	if !a.IsZero() && !isCountryCode(a.Country) {
		return &ProfileError{"address_country", "required with an address: an ISO 3166-1 alpha-2 code such as US"}
	}
	if p.Email != "" {
		if m, err := mail.ParseAddress(p.Email); err != nil || m.Address != p.Email || m.Name != "" || len(p.Email) > maxEmail {
			return &ProfileError{"email", "not a plain email address such as alice@example.com"}
		}
	}
	switch {
	case p.PhoneNumber == "" && p.PhoneCountryCode == "":
	case !allDigits(p.PhoneCountryCode) || len(p.PhoneCountryCode) > 3 || p.PhoneCountryCode[0] == '0':
		return &ProfileError{"phone_country_code", "required with a phone: the country calling code, 1 to 3 digits without +, such as 1"}
	case !allDigits(p.PhoneNumber) || len(p.PhoneNumber) < 4 || len(p.PhoneCountryCode)+len(p.PhoneNumber) > 15:
		return &ProfileError{"phone_number", "required with a phone_country_code: the national number in digits only, at most 15 digits with the country code (E.164)"}
	}
	return nil
}

func isCountryCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

const profileColumns = `customer_id, full_name, given_name, family_name, email, phone_country_code, phone_number,
	address_line1, address_line2, address_city, address_region, address_postal_code, address_country`

type profileRow struct {
	CustomerID, FullName, GivenName, FamilyName, Email, PhoneCountryCode, PhoneNumber string
	AddressLine1, AddressLine2, AddressCity, AddressRegion, AddressPostalCode         string
	AddressCountry                                                                    string
}

func (r profileRow) profile() Profile {
	return Profile{
		CustomerID: r.CustomerID, FullName: r.FullName, GivenName: r.GivenName, FamilyName: r.FamilyName,
		Email: r.Email, PhoneCountryCode: r.PhoneCountryCode, PhoneNumber: r.PhoneNumber,
		Address: Address{Line1: r.AddressLine1, Line2: r.AddressLine2, City: r.AddressCity, Region: r.AddressRegion,
			PostalCode: r.AddressPostalCode, Country: r.AddressCountry},
	}
}

// Profile returns the customer's profile, or ErrNoProfile.
func (s *Service) Profile(ctx context.Context, customerID string) (*Profile, error) {
	ps, err := ProfilesByCustomer(s.db.WithContext(ctx), []string{customerID})
	if err != nil {
		return nil, err
	}
	p, ok := ps[customerID]
	if !ok {
		return nil, ErrNoProfile
	}
	return &p, nil
}

// UpsertProfile creates or replaces the profile of an existing customer.
func (s *Service) UpsertProfile(ctx context.Context, p Profile) error {
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		return UpsertProfiles(tx, []Profile{p}, store.Micros(s.clock()))
	})
}

// ProfilesByCustomer returns the profiles on record of the given customers,
// by customer id, in tx (for loaders that write in their own transaction).
func ProfilesByCustomer(tx *gorm.DB, customerIDs []string) (map[string]Profile, error) {
	out := make(map[string]Profile, len(customerIDs))
	for start := 0; start < len(customerIDs); start += 200 {
		var rows []profileRow
		if err := tx.Raw(`SELECT `+profileColumns+` FROM customer_profiles WHERE customer_id IN ?`,
			customerIDs[start:min(start+200, len(customerIDs))]).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("identity.ProfilesByCustomer: %w", err)
		}
		for _, r := range rows {
			out[r.CustomerID] = r.profile()
		}
	}
	return out, nil
}

// UpsertProfiles validates and writes profiles in tx; now stamps them (µs).
func UpsertProfiles(tx *gorm.DB, ps []Profile, now int64) error {
	for start := 0; start < len(ps); start += 50 {
		chunk := ps[start:min(start+50, len(ps))]
		var sql strings.Builder
		sql.WriteString("INSERT INTO customer_profiles (" + profileColumns + ", updated_at) VALUES ")
		sql.WriteString(store.Placeholders(len(chunk), 14))
		args := make([]any, 0, len(chunk)*14)
		for _, p := range chunk {
			if e := p.Validate(); e != nil {
				return fmt.Errorf("identity.UpsertProfiles %s: %w", p.CustomerID, e)
			}
			a := p.Address
			args = append(args, p.CustomerID, p.FullName, p.GivenName, p.FamilyName, p.Email, p.PhoneCountryCode, p.PhoneNumber,
				a.Line1, a.Line2, a.City, a.Region, a.PostalCode, a.Country, now)
		}
		sql.WriteString(` ON CONFLICT (customer_id) DO UPDATE SET full_name = excluded.full_name,
			given_name = excluded.given_name, family_name = excluded.family_name, email = excluded.email,
			phone_country_code = excluded.phone_country_code, phone_number = excluded.phone_number,
			address_line1 = excluded.address_line1, address_line2 = excluded.address_line2,
			address_city = excluded.address_city, address_region = excluded.address_region,
			address_postal_code = excluded.address_postal_code, address_country = excluded.address_country,
			updated_at = excluded.updated_at`)
		if err := tx.Exec(sql.String(), args...).Error; err != nil {
			return fmt.Errorf("identity.UpsertProfiles: %w", err)
		}
	}
	return nil
}
