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
	"strconv"
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
	// SecretPrevious is CONSENTGATE_SECRET_PREVIOUS: the secret before a
	// rotation; the key ring sealed under it is re-sealed under Secret.
	SecretPrevious []byte
	// PurposePolicyFile replaces the built-in purpose policy when set.
	PurposePolicyFile string
	// RateLimit is each client's limit in requests per second (bursts up
	// to it) on data, PAR and token endpoints, unless the client has its
	// own; 0 means none. `serve` defaults it to DefaultRateLimit.
	RateLimit int
	// CustomerIDP is the issuer of the bank's OpenID Connect identity
	// provider customers log in with ("" : none), with this server's client
	// id and secret there and the id_token claim linked to customers'
	// idp_subject ("" : sub).
	CustomerIDP, CustomerIDPClientID, CustomerIDPClientSecret, CustomerIDPClaim string
	// NoPasswordLogin turns the password form off (--password-login=false),
	// leaving only the IdP.
	NoPasswordLogin bool
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration
	// DirectoryJWKS is the key set (file or URL) of the directory whose
	// software statements admit dynamic client registration; "" turns
	// /oauth2/register off.
	DirectoryJWKS string
	// ReadDBs are the URLs of PostgreSQL streaming replicas of DatabaseURL
	// (--read-db, repeatable) that serve the data API's account, balance
	// and transaction reads; empty: every read goes to the primary.
	ReadDBs []string
	// ReadDBMaxLag is how far behind the primary a replica may be and
	// still serve reads (--read-db-max-lag, default DefaultReadDBMaxLag).
	ReadDBMaxLag time.Duration
}

// MinSecretLen is the shortest accepted CONSENTGATE_SECRET.
const MinSecretLen = 32

// Defaults.
const (
	DefaultAddr     = ":8080"
	DefaultDatabase = "sqlite:consentgate.db"
	// DefaultIssuer is the issuer of a server on DefaultAddr; another
	// --addr changes it (IssuerForAddr).
	DefaultIssuer = "http://localhost:8080"
	// DefaultRateLimit is --rate-limit's default: requests per second per
	// client, shared by every node.
	DefaultRateLimit = 100
	// DefaultReadDBMaxLag is --read-db-max-lag's default.
	DefaultReadDBMaxLag = 2 * time.Second
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
	issuer := fs.String("issuer", "", "issuer URL (env CONSENTGATE_ISSUER, default http://localhost:PORT, the port of --addr)")
	demo := fs.Bool("demo", false, "seed the demo fixtures and generate a secret if none is set")
	rateLimit := fs.Int("rate-limit", -1, "requests per second per client on data, PAR and token endpoints, across all nodes; 0: none (env CONSENTGATE_RATE_LIMIT, default 100)")
	idp := fs.String("customer-idp", "", "issuer URL of the bank's OpenID Connect IdP customers log in with (env CONSENTGATE_CUSTOMER_IDP)")
	idpClientID := fs.String("customer-idp-client-id", "", "this server's client_id at the IdP (env CONSENTGATE_CUSTOMER_IDP_CLIENT_ID)")
	idpClientSecret := fs.String("customer-idp-client-secret", "", "this server's client secret at the IdP (env CONSENTGATE_CUSTOMER_IDP_CLIENT_SECRET)")
	idpClaim := fs.String("customer-idp-claim", "", "id_token claim linked to customers' idp_subject (env CONSENTGATE_CUSTOMER_IDP_CLAIM, default sub)")
	passwordLogin := fs.Bool("password-login", true, "offer the username and password form at /login (false: only the IdP)")
	policy := fs.String("purpose-policy", "", "JSON file replacing the built-in purpose policy (env CONSENTGATE_PURPOSE_POLICY)")
	directory := fs.String("directory-jwks", "",
		"FILE or URL of the JWKS of the directory whose software statements admit dynamic client registration (env CONSENTGATE_DIRECTORY_JWKS; unset: /oauth2/register is off)")
	var readDBs urlList
	fs.Var(&readDBs, "read-db", "URL of a PostgreSQL streaming replica of --db serving the data API's account reads; repeat for more (env CONSENTGATE_READ_DATABASE_URLS, comma-separated; docs/scaling.md)")
	maxLag := fs.Duration("read-db-max-lag", 0, "a replica further behind the primary than this serves no reads (env CONSENTGATE_READ_DB_MAX_LAG, default 2s)")
	var help strings.Builder
	fs.SetOutput(&help)
	fs.Usage = fs.PrintDefaults
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil, &HelpError{Text: help.String()}
	} else if err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	listen := firstNonEmpty(*addr, os.Getenv("CONSENTGATE_ADDR"), DefaultAddr)
	primary := dbURL()
	replicas, lag, err := readReplicas(primary, readDBs, *maxLag)
	if err != nil {
		return nil, err
	}
	c := &Config{
		ReadDBs:           replicas,
		ReadDBMaxLag:      lag,
		Addr:              listen,
		DatabaseURL:       primary,
		Issuer:            strings.TrimRight(firstNonEmpty(*issuer, os.Getenv("CONSENTGATE_ISSUER"), IssuerForAddr(listen)), "/"),
		Demo:              *demo,
		PurposePolicyFile: firstNonEmpty(*policy, os.Getenv("CONSENTGATE_PURPOSE_POLICY")),
		ShutdownTimeout:   15 * time.Second,
		DirectoryJWKS:     firstNonEmpty(*directory, os.Getenv("CONSENTGATE_DIRECTORY_JWKS")),
	}
	if s := os.Getenv("CONSENTGATE_SECRET"); s != "" {
		c.Secret = []byte(s)
	}
	c.CustomerIDP = strings.TrimRight(firstNonEmpty(*idp, os.Getenv("CONSENTGATE_CUSTOMER_IDP")), "/")
	c.CustomerIDPClientID = firstNonEmpty(*idpClientID, os.Getenv("CONSENTGATE_CUSTOMER_IDP_CLIENT_ID"))
	c.CustomerIDPClientSecret = firstNonEmpty(*idpClientSecret, os.Getenv("CONSENTGATE_CUSTOMER_IDP_CLIENT_SECRET"))
	c.CustomerIDPClaim = firstNonEmpty(*idpClaim, os.Getenv("CONSENTGATE_CUSTOMER_IDP_CLAIM"))
	c.NoPasswordLogin = !*passwordLogin
	c.RateLimit = *rateLimit
	if c.RateLimit < 0 {
		c.RateLimit = DefaultRateLimit
		if s := os.Getenv("CONSENTGATE_RATE_LIMIT"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("CONSENTGATE_RATE_LIMIT must be a whole number of requests per second, 0 for none (it is %q)", s)
			}
			c.RateLimit = n
		}
	}
	if s := os.Getenv("CONSENTGATE_SECRET_PREVIOUS"); s != "" {
		c.SecretPrevious = []byte(s)
	}
	return c, c.Validate()
}

// urlList is a repeatable flag.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// IsPostgresURL reports whether url names a PostgreSQL database (as
// store.Open reads it).
func IsPostgresURL(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// readReplicas resolves --read-db (else CONSENTGATE_READ_DATABASE_URLS) and
// --read-db-max-lag (else CONSENTGATE_READ_DB_MAX_LAG) against the primary.
// Its errors are usage errors: replicas exist only for a PostgreSQL primary.
func readReplicas(primary string, flagged []string, maxLag time.Duration) ([]string, time.Duration, error) {
	urls := flagged
	if len(urls) == 0 {
		for _, u := range strings.Split(os.Getenv("CONSENTGATE_READ_DATABASE_URLS"), ",") {
			if u = strings.TrimSpace(u); u != "" {
				urls = append(urls, u)
			}
		}
	}
	if maxLag == 0 {
		maxLag = DefaultReadDBMaxLag
		if s := os.Getenv("CONSENTGATE_READ_DB_MAX_LAG"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil {
				return nil, 0, fmt.Errorf("CONSENTGATE_READ_DB_MAX_LAG must be a duration such as 2s or 500ms (it is %q)", s)
			}
			maxLag = d
		}
	}
	if maxLag <= 0 {
		return nil, 0, fmt.Errorf("--read-db-max-lag must be positive, such as 2s or 500ms (it is %s)", maxLag)
	}
	if len(urls) == 0 {
		return nil, maxLag, nil
	}
	if !IsPostgresURL(primary) {
		return nil, 0, fmt.Errorf("--read-db needs a PostgreSQL primary (--db postgres://…): read replicas are PostgreSQL streaming replicas, and the primary is %q",
			strings.SplitN(primary, ":", 2)[0])
	}
	for i, u := range urls {
		if !IsPostgresURL(u) {
			// The URL may hold a password: name it by its place and scheme.
			return nil, 0, fmt.Errorf("--read-db number %d (%s:…) must be a postgres:// URL of a streaming replica of the primary",
				i+1, strings.SplitN(u, ":", 2)[0])
		}
	}
	return urls, maxLag, nil
}

// HelpError is ParseServe's answer to -h or --help: Text lists the flags.
// It wraps flag.ErrHelp.
type HelpError struct{ Text string }

func (e *HelpError) Error() string { return flag.ErrHelp.Error() }

// Unwrap returns flag.ErrHelp.
func (e *HelpError) Unwrap() error { return flag.ErrHelp }

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Secret != nil && len(c.Secret) < MinSecretLen {
		return fmt.Errorf("CONSENTGATE_SECRET must be at least %d bytes (it is %d)", MinSecretLen, len(c.Secret))
	}
	if c.Secret == nil && !c.Demo {
		return errors.New("CONSENTGATE_SECRET is required (at least 32 random bytes), unless you run with --demo")
	}
	if c.SecretPrevious != nil && len(c.SecretPrevious) < MinSecretLen {
		return fmt.Errorf("CONSENTGATE_SECRET_PREVIOUS must be at least %d bytes (it is %d)", MinSecretLen, len(c.SecretPrevious))
	}
	if c.CustomerIDP != "" {
		iu, err := url.Parse(c.CustomerIDP)
		if err != nil || iu.Host == "" || (iu.Scheme != "https" && !(iu.Scheme == "http" && IsLoopback(iu.Hostname()))) {
			return fmt.Errorf("--customer-idp %q must be the IdP's https issuer URL (http only on loopback)", c.CustomerIDP)
		}
		if c.CustomerIDPClientID == "" {
			return errors.New("--customer-idp needs --customer-idp-client-id (env CONSENTGATE_CUSTOMER_IDP_CLIENT_ID): this server's client at the IdP")
		}
	}
	if c.NoPasswordLogin && c.CustomerIDP == "" {
		return errors.New("--password-login=false needs --customer-idp: customers must log in somehow")
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

// IssuerForAddr is the default issuer of a server listening on addr: plain
// http on this machine, at the port it listens on (":18082" →
// http://localhost:18082), so that the URLs the server advertises reach
// it. A loopback host is kept ("127.0.0.1:9090" → http://127.0.0.1:9090);
// any other (":8080", "0.0.0.0:8080", "10.0.0.5:8080") becomes localhost: a
// server reached from elsewhere needs its public https --issuer anyway.
// An addr that is not host:port gives DefaultIssuer.
func IssuerForAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return DefaultIssuer
	}
	if !IsLoopback(host) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
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
