// Package ingest is how a bank's core systems feed consentgate: batches of
// institution, customer, account, balance and card transaction records,
// keyed by the provider's own ids, from the provider API (package httpapi)
// or from files (consentgate import). It parses and validates records one by
// one, so that every refusal names the record and the field, and applies a
// whole batch in one database transaction: a batch is written entirely or
// not at all, and writing the same batch again changes nothing.
//
// It must never store a full card number (text that looks like one is
// refused, not masked), never let a provider touch another institution's
// data, and never half-write a batch. It knows nothing of HTTP or tokens:
// callers decide which institution a caller writes for.
package ingest

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/store"
)

// Kind is a record type.
type Kind string

// The record types, in the order a batch applies them: each may refer to
// the ones before it.
const (
	KindInstitution Kind = "institution"
	KindCustomer    Kind = "customer"
	KindAccount     Kind = "account"
	KindBalance     Kind = "balance"
	KindTransaction Kind = "transaction"
)

// Kinds lists the record types in the order a batch applies them.
func Kinds() []Kind {
	return []Kind{KindInstitution, KindCustomer, KindAccount, KindBalance, KindTransaction}
}

// Limits of one batch.
const (
	// DefaultMaxRecords is the most records one API batch may hold.
	DefaultMaxRecords = 5000
	// DefaultMaxBodyBytes is the largest API batch body.
	DefaultMaxBodyBytes = 8 << 20
	// MaxListedErrors bounds the record errors a refusal lists.
	MaxListedErrors = 100
)

// Stats count what a batch (or an import) did. Every accepted record is
// exactly one of created, updated, unchanged or reversed.
type Stats struct {
	Records   int `json:"accepted"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Reversed  int `json:"reversed"`
	// Lines read (file imports only).
	Lines int `json:"-"`
}

func (s *Stats) add(o Stats) {
	s.Records += o.Records
	s.Created += o.Created
	s.Updated += o.Updated
	s.Unchanged += o.Unchanged
	s.Reversed += o.Reversed
}

// FieldError is why one record was refused.
type FieldError struct {
	// Index is the record's position in the batch, from 0 (in a file
	// import: among the file's records).
	Index int `json:"index"`
	// Line is the record's line in an imported file (from 1); 0 in API
	// batches.
	Line int `json:"-"`
	// Field is the offending field's name ("" when the record as a whole is
	// wrong, e.g. not a JSON object).
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// String renders e for people: "record 3: amount: …" or "line 12: amount: …".
func (e FieldError) String() string {
	where := "record " + strconv.Itoa(e.Index)
	if e.Line > 0 {
		where = "line " + strconv.Itoa(e.Line)
	}
	if e.Field == "" {
		return where + ": " + e.Reason
	}
	return where + ": " + e.Field + ": " + e.Reason
}

// RecordsError refuses a batch because of some of its records; nothing of
// the batch was written. It lists the first problem of each refused record,
// at most MaxListedErrors of them, in record order.
type RecordsError struct {
	Errors []FieldError
	// Total counts the refused records, listed or not.
	Total int
}

// Error implements error.
func (e *RecordsError) Error() string {
	if len(e.Errors) == 0 {
		return "ingest: invalid records"
	}
	msg := fmt.Sprintf("ingest: %d invalid record(s); first: %s", e.Total, e.Errors[0])
	return msg
}

func (e *RecordsError) add(fe FieldError) {
	e.Total++
	if len(e.Errors) < MaxListedErrors {
		e.Errors = append(e.Errors, fe)
	}
}

func (e *RecordsError) empty() bool { return e == nil || e.Total == 0 }

// ErrNotRegistered is returned for a client that is not a registered data
// provider of any institution.
var ErrNotRegistered = errors.New("ingest: client is not a registered data provider")

// ErrUnknownInstitution is returned when the institution to write does not
// exist (and the batch does not create it).
var ErrUnknownInstitution = errors.New("ingest: unknown institution")

// Ids. Records name things by the provider's own ids; consentgate stores
// and serves ids derived from the institution and the provider id, so that
// two institutions may use the same ids without ever meeting, and a
// provider can only ever name its own institution's data. The derivation is
// public (docs/ingestion.md) so that a provider can compute the ids apps
// see: prefix + base32(SHA-256(kind 0x00 institution 0x00 provider id))
// truncated to 130 bits, lower case.

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func deriveID(prefix string, kind Kind, institutionID, providerID string) string {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(institutionID))
	h.Write([]byte{0})
	h.Write([]byte(providerID))
	return prefix + idEncoding.EncodeToString(h.Sum(nil))[:26]
}

// CustomerID is the consentgate customer id of a provider's customer.
func CustomerID(institutionID, providerID string) string {
	return deriveID("cus_", KindCustomer, institutionID, providerID)
}

// AccountID is the account_id apps see for a provider's account.
func AccountID(institutionID, providerID string) string {
	return deriveID("acc_", KindAccount, institutionID, providerID)
}

// TransactionID is the transaction_id apps see for a provider's
// transaction.
func TransactionID(institutionID, providerID string) string {
	return deriveID("txn_", KindTransaction, institutionID, providerID)
}

// Username is the login name of a provider-created customer. Such
// customers get an unusable password hash (UnusablePasswordHash): they
// cannot log in with a password until the bank's identity integration
// gives them a credential.
func Username(institutionID, providerID string) string { return institutionID + ":" + providerID }

// UnusablePasswordHash is stored for provider-created customers: it is no
// valid password hash, so no password matches it.
const UnusablePasswordHash = "!"

// ValidInstitutionID reports whether id may name an institution that
// providers write for: 1–64 ASCII letters, digits, '_', '-' or '.'. A ':'
// would make customer usernames (institution:id) ambiguous.
func ValidInstitutionID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Records after validation: the domain values to write, with the
// provider's ids they were derived from and where they came from.

type pos struct {
	index int // in the batch (or among the file's records)
	line  int // in the file; 0 for API batches
}

func (p pos) err(field, reason string) FieldError {
	return FieldError{Index: p.index, Line: p.line, Field: field, Reason: reason}
}

type institutionRec struct {
	pos
	in accounts.Institution
}

type customerRec struct {
	pos
	providerID  string
	id          string
	username    string
	displayName string
	profile     *identity.Profile // nil: leave the one on record
	idpSubject  string            // "" for none
}

type accountRec struct {
	pos
	providerID         string
	customerProviderID string
	a                  accounts.Account
	numbers            *accounts.PaymentNumbers // nil: leave those on record
}

type balanceRec struct {
	pos
	accountProviderID string
	b                 accounts.Balance
}

type transactionRec struct {
	pos
	providerID        string
	accountProviderID string
	reversed          bool
	t                 accounts.Transaction
}

// Batch is a set of validated records of one institution, ready to apply.
type Batch struct {
	institutionID string
	institution   *institutionRec
	customers     []customerRec
	accounts      []accountRec
	balances      []balanceRec
	transactions  []transactionRec
	// keys of the records, to find duplicates, with where each was.
	keys map[recordID]int
}

func newBatch(institutionID string) *Batch {
	return &Batch{institutionID: institutionID, keys: map[recordID]int{}}
}

// grow makes room for n more records (of one kind, usually).
func (b *Batch) grow(n int) {
	keys := make(map[recordID]int, len(b.keys)+n)
	for k, v := range b.keys {
		keys[k] = v
	}
	b.keys = keys
	b.transactions = slices.Grow(b.transactions, n)
}

// Len is the number of records in the batch.
func (b *Batch) Len() int {
	n := len(b.customers) + len(b.accounts) + len(b.balances) + len(b.transactions)
	if b.institution != nil {
		n++
	}
	return n
}

// Summary describes the batch for the audit log: "transactions: 120
// records", or several such parts for a mixed batch.
func (b *Batch) Summary() string {
	var parts []string
	add := func(what string, n int) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d records", what, n))
		}
	}
	if b.institution != nil {
		add("institutions", 1)
	}
	add("customers", len(b.customers))
	add("accounts", len(b.accounts))
	add("balances", len(b.balances))
	add("transactions", len(b.transactions))
	if len(parts) == 0 {
		return "empty batch"
	}
	return strings.Join(parts, ", ")
}

// recordID is the identity of a record within a batch: two records with the
// same one in a batch are duplicates.
type recordID struct {
	kind Kind
	id   string
}

func key(k Kind, providerID string) recordID { return recordID{k, providerID} }

// micros truncates t to what the database stores, so that comparisons with
// stored rows are exact.
func micros(t time.Time) time.Time { return store.FromMicros(store.Micros(t)) }
