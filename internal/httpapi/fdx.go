package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/consentgate/consentgate/internal/accounts"
	"github.com/consentgate/consentgate/internal/apperr"
	"github.com/consentgate/consentgate/internal/consent"
	"github.com/consentgate/consentgate/internal/identity"
	"github.com/consentgate/consentgate/internal/purpose"
)

// FDXDeps are the data API's dependencies plus what only the FDX surface
// serves: customers' profiles, deposit accounts' payment numbers,
// transactions in posting order, and the pairwise subject (customerId).
type FDXDeps struct {
	Deps
	Profiles ProfileReader
	Numbers  accounts.NumberStore
	Posted   accounts.PostedReader
	Subjects SubjectFunc
}

// ProfileReader reads customers' profiles (identity.Service implements it).
type ProfileReader interface {
	// Profile returns the customer's profile, or identity.ErrNoProfile.
	Profile(ctx context.Context, customerID string) (*identity.Profile, error)
}

// SubjectFunc is the identifier of a customer as one client sees it: the
// pairwise subject (identity.Pairwise.Subject), never the internal id.
type SubjectFunc func(clientID, customerID string) string

type fdxHandler struct {
	*dataHandler
	profiles ProfileReader
	numbers  accounts.NumberStore
	posted   accounts.PostedReader
	subject  SubjectFunc
}

// RegisterFDX mounts the FDX resource API (Core Exchange 6.3 profile,
// SPEC §10, docs/fdx.md) on r, behind the very gate of the /v1 data API
// (RegisterData): the same audit step, authentication, purpose and scope
// decision and account check, with refusals rendered as FDX errors.
//
//	GET /fdx/v6/customers/current                        openid or accounts:read
//	GET /fdx/v6/accounts                                 accounts:read
//	GET /fdx/v6/accounts/:account_id                     accounts:read (balances with balances:read)
//	GET /fdx/v6/accounts/:account_id/transactions        transactions:read
//	GET /fdx/v6/accounts/:account_id/contact             identity:read
//	GET /fdx/v6/accounts/:account_id/payment-networks    account_numbers:read
func RegisterFDX(r gin.IRouter, d FDXDeps) {
	if d.Profiles == nil || d.Numbers == nil || d.Posted == nil || d.Subjects == nil {
		panic("httpapi.RegisterFDX: Profiles, Numbers, Posted and Subjects are required")
	}
	h := &fdxHandler{dataHandler: newDataHandler(d.Deps), profiles: d.Profiles, numbers: d.Numbers, posted: d.Posted, subject: d.Subjects}
	h.routes(r, h.recordAccess)
	h.replay = newReplay(func(e gin.IRouter) { h.routes(e, h.replayed) })
}

// routes mounts the FDX routes on r, first their first step (as
// dataHandler.routes).
func (h *fdxHandler) routes(r gin.IRouter, first gin.HandlerFunc) {
	g := r.Group("/fdx/v6", renderWith(writeFDXError), first, h.authenticate)
	g.GET("/customers/current", h.decideAny(consent.ResourceCustomer, purpose.ScopeOpenID, purpose.ScopeAccounts), h.currentCustomer)
	g.GET("/accounts", h.decide(purpose.ScopeAccounts, consent.ResourceAccounts), h.fdxAccounts)
	g.GET("/accounts/:account_id", h.decide(purpose.ScopeAccounts, consent.ResourceAccount), h.loadAccount, h.fdxAccount)
	g.GET("/accounts/:account_id/transactions", h.decide(purpose.ScopeTransactions, consent.ResourceTransactions), h.consentedAccount, h.fdxTransactions)
	g.GET("/accounts/:account_id/contact", h.decide(purpose.ScopeIdentity, consent.ResourceContact), h.loadAccount, h.fdxContact)
	g.GET("/accounts/:account_id/payment-networks", h.decide(purpose.ScopeAccountNumbers, consent.ResourcePaymentNetworks), h.loadAccount, h.fdxPaymentNetworks)
}

// decideAny is decide for an endpoint any one of scopes opens: it decides
// on the first of them the token and its consent carry (on the last when
// none, so the refusal names one the client could ask for).
func (h *fdxHandler) decideAny(resource string, scopes ...string) gin.HandlerFunc {
	steps := make([]gin.HandlerFunc, len(scopes))
	for i, s := range scopes {
		steps[i] = h.decide(s, resource)
	}
	return func(c *gin.Context) {
		p := PrincipalFrom(c)
		for i, s := range scopes {
			if slices.Contains(p.Scopes, s) && p.Consent.HasScope(s) {
				steps[i](c)
				return
			}
		}
		steps[len(steps)-1](c)
	}
}

// allows reports whether the call may also read scope's data (balances on
// the account endpoint): the purpose decision on that scope, for a call
// that has already passed the gate and been counted.
func (h *fdxHandler) allows(c *gin.Context, scope string) bool {
	p := PrincipalFrom(c)
	return h.purposes.Decide(p.Consent, h.now(), purpose.Call{DataPurpose: c.Request.Header.Values("Data-Purpose"),
		Scope: scope, TokenScopes: p.Scopes, CustomerPresent: true}) == nil
}

// The FDX shapes (Core Exchange 6.3 names and enums; openapi.yaml
// describes each). Money is a JSON number in major units; amounts are
// absolute, their direction in debitCreditMemo.

type fdxCustomer struct {
	CustomerID string `json:"customerId"`
}

type fdxCurrency struct {
	CurrencyCode string `json:"currencyCode"`
}

type fdxAccount struct {
	AccountCategory      string      `json:"accountCategory"`
	AccountID            string      `json:"accountId"`
	AccountType          string      `json:"accountType"`
	AccountNumberDisplay string      `json:"accountNumberDisplay,omitempty"` // omitted when the purpose may not see it
	ProductName          string      `json:"productName,omitempty"`          // omitted when the purpose may not see it
	Status               string      `json:"status"`
	Currency             fdxCurrency `json:"currency"`
	// Details of GET /accounts/{accountId}, with balances:read.
	CurrentBalance   *json.Number `json:"currentBalance,omitempty"`
	AvailableBalance *json.Number `json:"availableBalance,omitempty"`
	CreditLine       *json.Number `json:"creditLine,omitempty"`
	AvailableCredit  *json.Number `json:"availableCredit,omitempty"`
}

type fdxAccounts struct {
	Accounts []fdxAccount `json:"accounts"`
}

type fdxPage struct {
	NextOffset string `json:"nextOffset"`
}

// fdxTransaction is a DepositTransaction or a LineOfCreditTransaction.
// Every field that describes the purchase is omittable, so that a purpose
// that may not see it (issue 17) can leave it out.
type fdxTransaction struct {
	AccountCategory      string      `json:"accountCategory"`
	TransactionID        string      `json:"transactionId"`
	PostedTimestamp      string      `json:"postedTimestamp,omitempty"`
	TransactionTimestamp string      `json:"transactionTimestamp"`
	Description          *string     `json:"description,omitempty"`
	Payee                *string     `json:"payee,omitempty"`             // deposit accounts: the merchant
	CardNumberDisplay    *string     `json:"cardNumberDisplay,omitempty"` // the card used, masked
	DebitCreditMemo      string      `json:"debitCreditMemo"`
	Category             *string     `json:"category,omitempty"` // the MCC
	SubCategory          string      `json:"subCategory,omitempty"`
	Status               string      `json:"status"`
	Amount               json.Number `json:"amount"`
}

type fdxTransactions struct {
	Page         *fdxPage         `json:"page,omitempty"`
	Transactions []fdxTransaction `json:"transactions"`
}

type fdxName struct {
	First string `json:"first"`
	Last  string `json:"last"`
}

type fdxHolder struct {
	Type         string  `json:"type"`
	Name         fdxName `json:"name"`
	Relationship string  `json:"relationship"`
}

type fdxAddress struct {
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postalCode,omitempty"`
	Country    string `json:"country"`
	Type       string `json:"type"`
	Primary    bool   `json:"primary"`
}

type fdxTelephone struct {
	Type    string `json:"type"`
	Country string `json:"country"`
	Number  string `json:"number"`
	Primary bool   `json:"primary"`
}

type fdxContact struct {
	Holders    []fdxHolder    `json:"holders"`
	Emails     []string       `json:"emails,omitempty"`
	Addresses  []fdxAddress   `json:"addresses,omitempty"`
	Telephones []fdxTelephone `json:"telephones,omitempty"`
}

type fdxPaymentNetwork struct {
	BankID      string `json:"bankId"`
	Identifier  string `json:"identifier"`
	Type        string `json:"type"`
	TransferIn  bool   `json:"transferIn"`
	TransferOut bool   `json:"transferOut"`
}

type fdxPaymentNetworks struct {
	PaymentNetworks []fdxPaymentNetwork `json:"paymentNetworks"`
}

// fdxCategory maps an account type to FDX's accountCategory and
// accountType.
func fdxCategory(typ string) (category, accountType string) {
	switch typ {
	case accounts.TypeChecking:
		return "DEPOSIT_ACCOUNT", "CHECKING"
	case accounts.TypeSavings:
		return "DEPOSIT_ACCOUNT", "SAVINGS"
	default: // accounts.TypeCreditCard: the only other type the store admits
		return "LOC_ACCOUNT", "CREDITCARD"
	}
}

// viewFDXAccount renders an account; the optional fields the consent's
// purpose may not see (SPEC §12) are omitted.
func viewFDXAccount(a *accounts.Account, fs purpose.FieldSet) fdxAccount {
	category, typ := fdxCategory(a.Type)
	status := "OPEN"
	if a.Status == "closed" {
		status = "CLOSED"
	}
	v := fdxAccount{AccountCategory: category, AccountID: a.ID, AccountType: typ, Status: status,
		Currency: fdxCurrency{CurrencyCode: a.Currency}}
	if fs.Sees(purpose.FieldMaskedNumber) {
		v.AccountNumberDisplay = "****" + a.Last4
	}
	if fs.Sees(purpose.FieldDisplayName) {
		v.ProductName = a.DisplayName
	}
	return v
}

// fdxMoney is minor units as a JSON number in major units.
func fdxMoney(minor int64, currency string) *json.Number {
	n := json.Number(accounts.FormatMinor(minor, currency))
	return &n
}

// fdxTime is an FDX Timestamp: RFC 3339 in UTC with milliseconds.
func fdxTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func (h *fdxHandler) currentCustomer(c *gin.Context) {
	cons := PrincipalFrom(c).Consent
	c.JSON(http.StatusOK, fdxCustomer{CustomerID: h.subject(cons.ClientID, cons.CustomerID)})
}

func (h *fdxHandler) fdxAccounts(c *gin.Context) {
	cons := PrincipalFrom(c).Consent
	as, err := h.accounts.ListByIDs(c.Request.Context(), cons.CustomerID, cons.AccountIDs)
	if err != nil {
		readFailed(c, "listing accounts", err)
		return
	}
	out, fs := fdxAccounts{Accounts: make([]fdxAccount, len(as))}, h.fields(cons)
	for i := range as {
		out.Accounts[i] = viewFDXAccount(&as[i], fs)
	}
	c.JSON(http.StatusOK, out)
}

// fdxAccount answers the account with its balances when the consent
// grants balances:read (and a balance has been reported), without them
// otherwise.
func (h *fdxHandler) fdxAccount(c *gin.Context) {
	a := accountFrom(c)
	v := viewFDXAccount(a, h.fields(PrincipalFrom(c).Consent))
	if h.allows(c, purpose.ScopeBalances) {
		b, err := h.accounts.Balance(c.Request.Context(), a.ID)
		switch {
		case errors.Is(err, accounts.ErrNotFound):
		case err != nil:
			readFailed(c, "reading the balance", err)
			return
		case a.Type == accounts.TypeCreditCard:
			// A line of credit's balance is what is owed: positive.
			v.CurrentBalance = fdxMoney(-b.Current, b.Currency)
			v.AvailableCredit = fdxMoney(b.Available, b.Currency)
			if b.CreditLimit != nil {
				v.CreditLine = fdxMoney(*b.CreditLimit, b.Currency)
			}
		default:
			v.CurrentBalance = fdxMoney(b.Current, b.Currency)
			v.AvailableBalance = fdxMoney(b.Available, b.Currency)
		}
	}
	c.JSON(http.StatusOK, v)
}

// fdxTransactions judges the query before it reads anything (a refused
// call reads no data), then the account (its type names the transactions'
// accountCategory) and the page.
func (h *fdxHandler) fdxTransactions(c *gin.Context) {
	p, accountID := PrincipalFrom(c), accountIDFrom(c)
	now := h.now()
	q, binding, err := parseFDXTxQuery(c.Request.URL.Query(), accountID, now, h.history(p.Consent, now))
	if err != nil {
		WriteProblem(c, err)
		return
	}
	a, ok := h.readAccount(c, p.Consent.CustomerID, accountID)
	if !ok {
		return
	}
	q.CustomerID = p.Consent.CustomerID
	// Fields the purpose may not see are never read (SPEC §12), and omitted.
	q.Hidden = hiddenTxFields(h.fields(p.Consent))
	txs, next, err := h.posted.PostedTransactions(c.Request.Context(), q)
	if errors.Is(err, accounts.ErrNotFound) {
		WriteProblem(c, errAccountNotFound)
		return
	}
	if err != nil {
		readFailed(c, "reading transactions", err)
		return
	}
	category, _ := fdxCategory(a.Type)
	out := fdxTransactions{Transactions: make([]fdxTransaction, len(txs))}
	for i := range txs {
		out.Transactions[i] = viewFDXTransaction(&txs[i], category)
	}
	if next != nil {
		out.Page = &fdxPage{NextOffset: encodeOffset(*next, binding)}
	}
	c.JSON(http.StatusOK, out)
}

// pendingIDSuffix makes a pending transaction's transactionId: Core
// Exchange wants a pending transaction and the posted one it becomes to
// have different ids, and ours keeps its id when it is booked.
const pendingIDSuffix = ".pending"

func viewFDXTransaction(t *accounts.Transaction, category string) fdxTransaction {
	v := fdxTransaction{AccountCategory: category, TransactionID: t.ID, TransactionTimestamp: fdxTime(t.TransactedAt),
		Status: "POSTED", DebitCreditMemo: "CREDIT"}
	if t.Status == accounts.StatusPending {
		v.Status, v.TransactionID = "PENDING", t.ID+pendingIDSuffix
	}
	if t.BookedAt != nil {
		v.PostedTimestamp = fdxTime(*t.BookedAt)
	}
	amount := t.Amount
	if amount < 0 {
		v.DebitCreditMemo, amount = "DEBIT", -amount
	}
	v.Amount = *fdxMoney(amount, t.Currency)
	// Core Exchange expects a description; ours may be empty, then the
	// merchant stands in. Both are empty when the purpose may see neither:
	// the field is omitted.
	desc := t.Description
	if desc == "" {
		desc = t.MerchantName
	}
	if desc != "" {
		v.Description = &desc
	}
	if t.MerchantName != "" && category == "DEPOSIT_ACCOUNT" {
		v.Payee = &t.MerchantName
	}
	if t.CardLast4 != "" {
		masked := "****" + t.CardLast4
		v.CardNumberDisplay = &masked
	}
	if t.MCC != "" {
		v.Category, v.SubCategory = &t.MCC, "MCC"
	}
	return v
}

var errNoProfile = apperr.New(apperr.NotFound,
	"The bank has no contact details on record for this account's holder yet (docs/ingestion.md: customer profiles).")

func (h *fdxHandler) fdxContact(c *gin.Context) {
	a := accountFrom(c)
	pr, err := h.profiles.Profile(c.Request.Context(), a.CustomerID)
	switch {
	case errors.Is(err, identity.ErrNoProfile):
		WriteProblem(c, errNoProfile)
		return
	case err != nil:
		readFailed(c, "reading the profile", err)
		return
	}
	out := fdxContact{Holders: []fdxHolder{{Type: "CONSUMER", Relationship: "PRIMARY",
		Name: fdxName{First: pr.GivenName, Last: pr.FamilyName}}}}
	if pr.Email != "" {
		out.Emails = []string{pr.Email}
	}
	if ad := pr.Address; !ad.IsZero() {
		out.Addresses = []fdxAddress{{Line1: ad.Line1, Line2: ad.Line2, City: ad.City, Region: ad.Region,
			PostalCode: ad.PostalCode, Country: ad.Country, Type: "HOME", Primary: true}}
	}
	if pr.PhoneNumber != "" {
		out.Telephones = []fdxTelephone{{Type: "PERSONAL", Country: "+" + pr.PhoneCountryCode, Number: pr.PhoneNumber, Primary: true}}
	}
	c.JSON(http.StatusOK, out)
}

var errNoNumbers = apperr.New(apperr.NotFound,
	"The bank has no payment numbers on record for this account yet (docs/ingestion.md: payment numbers).")

func (h *fdxHandler) fdxPaymentNetworks(c *gin.Context) {
	a := accountFrom(c)
	if !accounts.IsDeposit(a.Type) {
		WriteProblem(c, apperr.New(apperr.AccountTypeNotSupported,
			"Payment networks are served for deposit accounts (checking, savings) only; this is a credit card account."))
		return
	}
	n, err := h.numbers.PaymentNumbers(c.Request.Context(), a.ID)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		WriteProblem(c, errNoNumbers)
		return
	case err != nil:
		readFailed(c, "reading the payment numbers", err)
		return
	}
	open := a.Status == "open"
	c.JSON(http.StatusOK, fdxPaymentNetworks{PaymentNetworks: []fdxPaymentNetwork{{
		BankID: n.RoutingNumber, Identifier: n.AccountNumberToken, Type: "US_ACH", TransferIn: open, TransferOut: open,
	}}})
}
