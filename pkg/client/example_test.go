package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log"

	"github.com/consentgate/consentgate/pkg/client"
)

// An app with a private key (private_key_jwt) and a DPoP key asks the
// customer for read access, then reads the consented accounts.
func ExampleClient() {
	// In a real app both keys are loaded (or live in a KMS); the public half
	// of authKey is what was registered:
	//   consentgate client create --name "Budget App" --auth-method private_key_jwt \
	//     --jwks-file budget.jwks --dpop --redirect-uri https://budget.example/callback …
	authKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dpopKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := client.PublicJWKS(authKey, "budget-2025") // the content of budget.jwks
	_ = jwks

	c, err := client.New(client.Config{
		Issuer: "https://bank.example", ClientID: "budget-app",
		PrivateKey: authKey, KeyID: "budget-2025", DPoPKey: dpopKey,
		RedirectURI: "https://budget.example/callback",
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	pending, err := c.PushAuthorization(ctx, client.AuthRequest{
		Scopes:  []string{"accounts:read", "transactions:read", "offline_access"},
		Purpose: "personal_finance_management",
	})
	if err != nil {
		log.Fatal(err)
	}
	// Keep pending in the customer's session and send the browser to:
	fmt.Println(pending.AuthorizeURL)

	// The browser comes back to the redirect URI; hand its full URL over.
	callback := "https://budget.example/callback?code=…&state=…&iss=https%3A%2F%2Fbank.example"
	tok, err := c.Exchange(ctx, pending, callback)
	if err != nil {
		log.Fatal(err)
	}
	accounts, err := c.Accounts(ctx, tok, "personal_finance_management")
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range accounts {
		page, err := c.Transactions(ctx, tok, "personal_finance_management", a.AccountID, client.TransactionQuery{Limit: 50})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(a.DisplayName, len(page.Data))
	}
	// Access tokens live 5 minutes; refresh (the old refresh token dies).
	if _, err := c.Refresh(ctx, tok); err != nil {
		log.Fatal(err)
	}
}
