package web

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/purpose"
)

// This file turns consents and audit events into the words customers read
// on the dashboard: no codes, no jargon, times in UTC said as UTC.

// when is a time for a template: words for people, ISO for <time datetime>.
type when struct{ Text, ISO string }

func dateOf(t time.Time) when {
	return when{Text: t.UTC().Format("2 January 2006"), ISO: t.UTC().Format(time.RFC3339)}
}

func momentOf(t time.Time) when {
	return when{Text: t.UTC().Format("2 January 2006, 15:04:05 UTC"), ISO: t.UTC().Format(time.RFC3339)}
}

// grantView is one consent as the dashboard shows it.
type grantView struct {
	ID, AppName, DetailsURL, RevokeURL string
	HeadingID                          string // the id of its heading, for aria-labelledby
	PurposeLabel, PurposeDescription   string
	Accounts                           []string
	Data                               []string
	HistoryDays                        int // 0: no transactions
	Active                             bool
	Paused                             bool   // live, but the bank suspended the app
	Status                             string // in words
	Granted                            *when  // nil when never approved
	EndLabel                           string // "Ends on", "Ended on", "Stopped on"
	End                                *when
	LastAccess                         *when // nil: never read
}

func (h *Handler) grantView(g *consent.Consent, names map[string]string, accts []accounts.Account, last map[string]time.Time, now time.Time) grantView {
	v := grantView{
		ID: g.ID, AppName: names[g.ClientID], HeadingID: "grant-" + idSafe(g.ID),
		DetailsURL: "/dashboard/consents/" + url.PathEscape(g.ID),
		RevokeURL:  "/dashboard/consents/" + url.PathEscape(g.ID) + "/revoke",
		Active:     g.Active(now),
	}
	if v.AppName == "" {
		v.AppName = "An app that is no longer registered"
	}
	if pol, ok := h.d.Purposes.Lookup(g.Purpose); ok {
		v.PurposeLabel, v.PurposeDescription = pol.Label, pol.Description
	} else {
		v.PurposeLabel = strings.ReplaceAll(g.Purpose, "_", " ")
	}
	for _, sw := range scopeWords {
		if g.HasScope(sw.scope) {
			v.Data = append(v.Data, sw.words)
		}
	}
	if g.HasScope(purpose.ScopeTransactions) {
		v.HistoryDays = g.HistoryDays
	}
	for _, id := range g.AccountIDs {
		v.Accounts = append(v.Accounts, accountWords(id, accts))
	}
	if g.AuthorizedAt != nil {
		d := dateOf(*g.AuthorizedAt)
		v.Granted = &d
	}
	if t, ok := last[g.ID]; ok {
		m := momentOf(t)
		v.LastAccess = &m
	}
	st := g.StatusAt(now)
	switch st {
	case consent.Authorized:
		v.Status, v.EndLabel = "Active", "Ends on"
		if g.ExpiresAt != nil {
			d := dateOf(*g.ExpiresAt)
			v.End = &d
		}
	case consent.Expired:
		v.Status, v.EndLabel = "Ended: the time you allowed ran out", "Ended on"
		if g.ExpiresAt != nil {
			d := dateOf(*g.ExpiresAt)
			v.End = &d
		}
	case consent.Revoked:
		v.Status, v.EndLabel = revokedWords(g.RevokedBy), "Stopped on"
		if g.RevokedAt != nil {
			d := dateOf(*g.RevokedAt)
			v.End = &d
		}
	case consent.Rejected:
		v.Status = "You said no: it never had access"
	default:
		v.Status = "Waiting for your answer"
	}
	return v
}

func revokedWords(by string) string {
	switch by {
	case "customer":
		return "Stopped by you"
	case "client":
		return "Stopped by the app"
	case "reuse_detected":
		return "Stopped for your safety: someone tried to reuse an old key of the app"
	}
	if strings.HasPrefix(by, "operator ") { // the bank's operations team (SPEC §11)
		return "Stopped by your bank"
	}
	return "Stopped"
}

// accountWords names an account the way the customer knows it.
func accountWords(id string, accts []accounts.Account) string {
	i := slices.IndexFunc(accts, func(a accounts.Account) bool { return a.ID == id })
	if i < 0 {
		return "An account that is no longer open"
	}
	a := accts[i]
	return a.DisplayName + " (" + accountTypeWords[a.Type] + " ****" + a.Last4 + ")"
}

// idSafe keeps the characters an HTML id and a URL fragment take as they are.
func idSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, s)
}

// revokeFormView is what the revoke button's form needs; From says which
// page to come back to.
type revokeFormView struct {
	CSRF  string
	Grant grantView
	From  string
}

var templateFuncs = map[string]any{
	"revokeForm": func(csrf string, g grantView, from string) revokeFormView {
		return revokeFormView{CSRF: csrf, Grant: g, From: from}
	},
}

// eventView is one line of a grant's access history.
type eventView struct {
	When    when
	What    string
	Allowed bool
	Result  string // "Allowed", or "Refused: why"
	Proof   string // link to the entry's proof that it is in the signed log
}

// eventWords says what each audit event type means for the customer; data
// reads are described from their path instead.
// #nosec G101 -- plain-language labels; "token" in a key is not a credential
var eventWords = map[string]string{
	"token.issued":       "The app received a key to read your data",
	"token.refreshed":    "The app renewed its key",
	"token.revoked":      "The app's keys were cancelled",
	"consent.requested":  "The app asked for your permission",
	"consent.authorized": "You gave your permission",
	"consent.rejected":   "You refused permission",
	"consent.revoked":    "Permission stopped",
	"consent.expired":    "Permission ended: the time you allowed ran out",
	"purpose.blocked":    "The app asked to use your data for a purpose that is never allowed",
}

// reasonWords explain refusals (and who stopped a permission).
// #nosec G101 -- plain-language labels; "token" in a key is not a credential
var reasonWords = map[string]string{
	"purpose_prohibited":      "the app wanted to use your data for a purpose that is never allowed, such as advertising",
	"purpose_not_consented":   "the app wanted to use your data for something you did not agree to",
	"invalid_token":           "the app's key was not valid: access had been stopped or had ended",
	"consent_inactive":        "access had been stopped or had ended",
	"insufficient_scope":      "you did not allow this kind of data",
	"account_not_found":       "you did not share this account",
	"history_window_exceeded": "the app asked for older transactions than you allowed",
	"access_exceeded":         "the app asked too often while you were not using it",
	"rate_limited":            "the app sent too many requests",
	"customer":                "by you",
	"client":                  "by the app",
	"reuse_detected":          "for your safety: someone tried to reuse an old key of the app",
}

func describeEvent(ev AccessEvent, accts []accounts.Account) eventView {
	v := eventView{When: momentOf(ev.OccurredAt), Allowed: ev.Outcome == "allowed", What: eventWords[ev.Type]}
	if ev.Type == "data.access" {
		v.What = readWords(ev, accts)
	}
	if v.What == "" {
		v.What = strings.ReplaceAll(ev.Type, ".", " ")
	}
	why := reasonWords[ev.Reason]
	switch {
	case why != "":
	case strings.HasPrefix(ev.Reason, "http_"):
		why = "the request could not be answered"
	case ev.Reason != "":
		why = strings.ReplaceAll(ev.Reason, "_", " ")
	}
	if ev.Type == "consent.revoked" && why != "" {
		v.What += " " + why
	}
	switch {
	case !v.Allowed && why != "":
		v.Result = "Refused: " + why
	case !v.Allowed:
		v.Result = "Refused"
	case ev.Type == "data.access":
		v.Result = "Allowed"
	default:
		v.Result = "Done"
	}
	return v
}

// readWords describes a data read from its path: which data of which
// account.
func readWords(ev AccessEvent, accts []accounts.Account) string {
	if ev.Path == "/userinfo" {
		return "Read your sign-in identity (your name and email, if you allowed them)"
	}
	parts := strings.Split(strings.Trim(ev.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != "v1" || parts[1] != "accounts" {
		return "Other data"
	}
	if len(parts) == 2 {
		return "Read your list of accounts"
	}
	id := ev.AccountID
	if id == "" {
		id, _ = url.PathUnescape(parts[2])
	}
	name := accountWords(id, accts)
	if slices.IndexFunc(accts, func(a accounts.Account) bool { return a.ID == id }) < 0 {
		name = "an account you did not share"
	}
	switch {
	case len(parts) == 3:
		return "Read the details of " + name
	case len(parts) == 4 && parts[3] == "balances":
		return "Read the balance of " + name
	case len(parts) == 4 && parts[3] == "transactions":
		return "Read the transactions of " + name
	}
	return "Other data of " + name
}
