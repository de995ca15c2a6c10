// Package config reads consentgate's settings from flags and the
// environment (CONSENTGATE_*); flags win. It validates values but opens
// nothing.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config is the server's configuration.
type Config struct {
	Addr        string // listen address, e.g. ":8080"
	DatabaseURL string // "sqlite:PATH" or "postgres://…"
	Issuer      string // OAuth issuer URL, no trailing slash
	Secret      []byte // ≥ 32 bytes; nil with Demo means "generate and persist"
	Demo        bool   // seed the demo fixtures
	// PurposePolicyFile replaces the built-in purpose policy when set.
	PurposePolicyFile string
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration
	// DirectoryJWKS is the key set (file or URL) of the directory whose
	// software statements admit dynamic client registration; "" turns
	// /oauth2/register off.
	DirectoryJWKS string
}

// MinSecretLen is the shortest accepted CONSENTGATE_SECRET.
const MinSecretLen = 32

// Defaults.
const (
	DefaultAddr     = ":8080"
	DefaultDatabase = "sqlite:consentgate.db"
	DefaultIssuer   = "http://localhost:8080"
)

// RegisterDBFlag adds the shared database flag to fs and returns a function
// that resolves it against the environment.
func RegisterDBFlag(fs *flag.FlagSet) func() string {
	db := fs.String("db", "", "database URL: sqlite:PATH or postgres://… (env CONSENTGATE_DATABASE_URL)")
	return func() string { return firstNonEmpty(*db, os.Getenv("CONSENTGATE_DATABASE_URL"), DefaultDatabase) }
}

// ParseServe parses the flags of `consentgate serve`.
func ParseServe(args []string) (*Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "", "listen address (env CONSENTGATE_ADDR, default :8080)")
	dbURL := RegisterDBFlag(fs)
	issuer := fs.String("issuer", "", "issuer URL (env CONSENTGATE_ISSUER, default http://localhost:8080)")
	demo := fs.Bool("demo", false, "seed the demo fixtures and generate a secret if none is set")
	policy := fs.String("purpose-policy", "", "JSON file replacing the built-in purpose policy (env CONSENTGATE_PURPOSE_POLICY)")
	directory := fs.String("directory-jwks", "",
		"FILE or URL of the JWKS of the directory whose software statements admit dynamic client registration (env CONSENTGATE_DIRECTORY_JWKS; unset: /oauth2/register is off)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	c := &Config{
		Addr:              firstNonEmpty(*addr, os.Getenv("CONSENTGATE_ADDR"), DefaultAddr),
		DatabaseURL:       dbURL(),
		Issuer:            strings.TrimRight(firstNonEmpty(*issuer, os.Getenv("CONSENTGATE_ISSUER"), DefaultIssuer), "/"),
		Demo:              *demo,
		PurposePolicyFile: firstNonEmpty(*policy, os.Getenv("CONSENTGATE_PURPOSE_POLICY")),
		ShutdownTimeout:   15 * time.Second,
		DirectoryJWKS:     firstNonEmpty(*directory, os.Getenv("CONSENTGATE_DIRECTORY_JWKS")),
	}
	if s := os.Getenv("CONSENTGATE_SECRET"); s != "" {
		c.Secret = []byte(s)
	}
	return c, c.Validate()
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Secret != nil && len(c.Secret) < MinSecretLen {
		return fmt.Errorf("CONSENTGATE_SECRET must be at least %d bytes (it is %d)", MinSecretLen, len(c.Secret))
	}
	if c.Secret == nil && !c.Demo {
		return errors.New("CONSENTGATE_SECRET is required (at least 32 random bytes), unless you run with --demo")
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q must be an absolute http(s) URL without query or fragment", c.Issuer)
	}
	if u.Scheme == "http" && !c.Demo && !IsLoopback(u.Hostname()) {
		return fmt.Errorf("issuer %q must use https (plain http is only allowed on loopback or with --demo)", c.Issuer)
	}
	return nil
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
