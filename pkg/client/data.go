package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Account is a consented account (SPEC §3).
type Account struct {
	AccountID       string `json:"account_id"`
	InstitutionID   string `json:"institution_id"`
	InstitutionName string `json:"institution_name"`
	Type            string `json:"type"` // checking | savings | credit_card
	DisplayName     string `json:"display_name"`
	MaskedNumber    string `json:"masked_number"`
	Currency        string `json:"currency"`
	Status          string `json:"status"`
}

// Balances are an account's balances; amounts are decimal strings in major
// units, negative for money owed.
type Balances struct {
	AccountID   string  `json:"account_id"`
	Currency    string  `json:"currency"`
	Current     string  `json:"current"`
	Available   string  `json:"available"`
	CreditLimit *string `json:"credit_limit"` // nil unless credit_card
	AsOf        string  `json:"as_of"`
}

// Transaction is a card transaction; Amount is negative for money out.
type Transaction struct {
	TransactionID string  `json:"transaction_id"`
	AccountID     string  `json:"account_id"`
	Status        string  `json:"status"` // booked | pending
	TransactedAt  string  `json:"transacted_at"`
	BookedAt      *string `json:"booked_at"`
	Amount        string  `json:"amount"`
	Currency      string  `json:"currency"`
	Description   string  `json:"description"`
	// The API sends null for these when there is no merchant or no card
	// (a transfer, a salary); they are then "".
	MerchantName         string `json:"merchant_name"`
	MerchantCategoryCode string `json:"merchant_category_code"`
	CardLast4            string `json:"card_last4"`
}

// TransactionQuery filters a transaction listing; zero values are the
// server's defaults (the last 90 days, 100 per page).
type TransactionQuery struct {
	From, To string // dates or RFC 3339 times
	Status   string // booked | pending
	Limit    int
	Cursor   string // NextCursor of the previous page
}

// TransactionPage is one page of transactions, newest first.
type TransactionPage struct {
	Data       []Transaction `json:"data"`
	NextCursor *string       `json:"next_cursor"` // nil on the last page
}

// Accounts lists the accounts the customer selected in the consent.
// purpose is sent as Data-Purpose; "" leaves it out (the consent's purpose).
func (c *Client) Accounts(ctx context.Context, tok *Token, purpose string) ([]Account, error) {
	var out struct {
		Data []Account `json:"data"`
	}
	if err := c.get(ctx, tok, purpose, "/v1/accounts", nil, &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// Balances reads one consented account's balances.
func (c *Client) Balances(ctx context.Context, tok *Token, purpose, accountID string) (*Balances, error) {
	var out struct {
		Data Balances `json:"data"`
	}
	if err := c.get(ctx, tok, purpose, "/v1/accounts/"+url.PathEscape(accountID)+"/balances", nil, &out); err != nil {
		return nil, err
	}
	return &out.Data, nil
}

// Transactions reads one page of a consented account's transactions.
func (c *Client) Transactions(ctx context.Context, tok *Token, purpose, accountID string, q TransactionQuery) (*TransactionPage, error) {
	v := url.Values{}
	for k, s := range map[string]string{"from": q.From, "to": q.To, "status": q.Status, "cursor": q.Cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out TransactionPage
	if err := c.get(ctx, tok, purpose, "/v1/accounts/"+url.PathEscape(accountID)+"/transactions", v, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// get calls the data API with the access token (DPoP scheme and a proof
// naming the token for DPoP tokens) and decodes the {"data": …} answer.
// A use_dpop_nonce answer is retried once with the server's nonce.
func (c *Client) get(ctx context.Context, tok *Token, purpose, path string, query url.Values, out any) error {
	if tok == nil || tok.AccessToken == "" {
		return errors.New("client: no access token")
	}
	u, err := url.Parse(c.cfg.APIBaseURL + path)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	u.RawQuery = query.Encode()
	dpop := strings.EqualFold(tok.TokenType, "DPoP")
	if dpop && c.dpopKey == nil {
		return errors.New("client: a DPoP token needs the client's DPoPKey")
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		if purpose != "" {
			req.Header.Set("Data-Purpose", purpose)
		}
		if dpop {
			proof, err := c.proof(http.MethodGet, htu(u), tok.AccessToken, c.nonceFor(u))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
			req.Header.Set("DPoP", proof)
		} else {
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		}
		resp, body, err := c.do(req) //nolint:bodyclose // c.do has read and closed the body
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("client: %s answer: %w", path, err)
			}
			return nil
		}
		e := errorFrom(resp, body)
		if dpop && attempt == 0 && resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("DPoP-Nonce") != "" &&
			strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
			continue
		}
		return e
	}
}
