package purpose

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentgate/consentgate/internal/consent"
)

// Refusal codes of the decision (SPEC §3, §4). The first two are RFC 6750
// token errors; the rest are problem+json codes.
const (
	RefuseInvalidToken        = "invalid_token"
	RefuseInsufficientScope   = "insufficient_scope"
	RefusePurposeProhibited   = "purpose_prohibited"
	RefusePurposeNotConsented = "purpose_not_consented"
	RefuseHistoryExceeded     = "history_window_exceeded"
	RefuseAccessExceeded      = "access_exceeded"
)

// Call is one data call as the purpose decision sees it.
type Call struct {
	// DataPurpose holds the Data-Purpose header values as received; nil
	// when the header is absent (the consent's purpose applies).
	DataPurpose []string
	// Scope is what the endpoint needs; TokenScopes what the token carries.
	Scope       string
	TokenScopes []string
	// From is the earliest transaction time asked for; nil when the call
	// reads no transactions.
	From *time.Time
	// CustomerPresent is true when the customer is using the app now
	// (x-fapi-customer-ip-address); such calls are not counted.
	CustomerPresent bool
	// UnattendedToday counts the consent's unattended calls on this
	// resource of this account this UTC day, this one included (0 when the
	// customer is present).
	UnattendedToday int
}

// Refusal says why a call is refused: a stable code and a message that
// tells the developer what to fix.
type Refusal struct {
	Code       string
	Msg        string
	RetryAfter time.Duration // for access_exceeded: until the next UTC day
}

// Decide is the purpose-limitation decision for one data call under
// consent c at now: nil to allow, else the first refusal in the order a
// developer should fix them (token, purpose, scope, history, volume). It is
// pure: the caller reads the consent and the day's count, Decide only
// judges.
func (t *Table) Decide(c *consent.Consent, now time.Time, call Call) *Refusal {
	if c == nil || !c.Active(now) {
		return &Refusal{Code: RefuseInvalidToken,
			Msg: "The consent behind this token is not active: it was revoked, has expired or was never authorized."}
	}
	if r := t.decidePurpose(call.DataPurpose, c.Purpose); r != nil {
		return r
	}
	policy, _ := t.Lookup(c.Purpose) // known: decidePurpose checked
	if !slices.Contains(call.TokenScopes, call.Scope) || !c.HasScope(call.Scope) || !policy.AllowsScope(call.Scope) {
		return &Refusal{Code: RefuseInsufficientScope,
			Msg: "This call needs the " + call.Scope + " scope, which this consent does not grant."}
	}
	if call.From != nil && call.From.Before(t.HistoryStart(c, now)) {
		return &Refusal{Code: RefuseHistoryExceeded,
			Msg: "The consent lets this app read transactions from " + t.HistoryStart(c, now).Format(time.RFC3339) +
				" onwards; ask with a later 'from'."}
	}
	if !call.CustomerPresent && call.UnattendedToday > policy.UnattendedPerDay {
		next := now.UTC().Truncate(Day).Add(Day)
		return &Refusal{Code: RefuseAccessExceeded, RetryAfter: next.Sub(now),
			Msg: "This consent allows " + strconv.Itoa(policy.UnattendedPerDay) + " calls a day to this resource of this account without the customer present " +
				"(send x-fapi-customer-ip-address when the customer is using the app). Try again after " +
				next.Format(time.RFC3339) + "."}
	}
	return nil
}

// HistoryStart is the earliest transaction time consent c may read at now:
// the window agreed at consent time, narrowed if the policy has narrowed
// since (never widened).
func (t *Table) HistoryStart(c *consent.Consent, now time.Time) time.Time {
	start := c.HistoryStart(now)
	if p, ok := t.Lookup(c.Purpose); ok {
		if byPolicy := now.Add(-time.Duration(p.MaxHistoryDays) * Day); byPolicy.After(start) {
			start = byPolicy
		}
	}
	return start
}

// decidePurpose enforces the Data-Purpose header: absent means the
// consent's purpose; a prohibited purpose anywhere in it is refused as such,
// even in disguise or inside a list; anything but exactly one value equal to
// the consent's purpose is not consented. Values are compared as sent: only
// the consented code itself passes.
func (t *Table) decidePurpose(values []string, consented string) *Refusal {
	for _, v := range values {
		if IsProhibited(v) {
			return refusedProhibited
		}
		for part := range strings.SplitSeq(v, ",") {
			if IsProhibited(part) {
				return refusedProhibited
			}
		}
	}
	if IsProhibited(consented) {
		return refusedProhibited
	}
	if _, ok := t.Lookup(consented); !ok {
		return &Refusal{Code: RefusePurposeNotConsented,
			Msg: "The purpose of this consent is no longer offered. Ask the customer for a new consent with a current purpose."}
	}
	switch {
	case len(values) == 0:
		return nil
	case len(values) > 1:
		return &Refusal{Code: RefusePurposeNotConsented,
			Msg: "Send the Data-Purpose header at most once, with the purpose the customer consented to: " + consented + "."}
	case strings.TrimSpace(values[0]) == "":
		// An empty header is not an absent one: the client meant to say
		// something and said nothing, so it is told, not guessed for.
		return &Refusal{Code: RefusePurposeNotConsented,
			Msg: "The Data-Purpose header is empty: leave the header out to use the consent's purpose, or send it with " + consented + "."}
	case values[0] != consented:
		return &Refusal{Code: RefusePurposeNotConsented,
			Msg: "Data-Purpose must be the purpose the customer consented to (" + consented + "), or be left out."}
	}
	return nil
}

var refusedProhibited = &Refusal{Code: RefusePurposeProhibited,
	Msg: "This purpose is prohibited for every app (advertising, marketing, cross-selling, data sale, profiling). Data is never served for it."}
