// Package apperr is the one error type that crosses package boundaries: a
// stable code for machines, a public message for developers, and the private
// cause for the log. It must never put the cause in front of a client.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
)

// Code is a stable, documented error code (SPEC §3).
type Code string

// The codes the API may answer with.
const (
	AccountNotFound       Code = "account_not_found"
	PurposeProhibited     Code = "purpose_prohibited"
	PurposeNotConsented   Code = "purpose_not_consented"
	HistoryWindowExceeded Code = "history_window_exceeded"
	InvalidCursor         Code = "invalid_cursor"
	InvalidRequest        Code = "invalid_request"
	AccessExceeded        Code = "access_exceeded"
	RateLimited           Code = "rate_limited"
	AuditUnavailable      Code = "audit_unavailable"
	NotFound              Code = "not_found"
	Conflict              Code = "conflict"
	PayloadTooLarge       Code = "payload_too_large"
	Unavailable           Code = "service_unavailable"
	Internal              Code = "internal_error"
	// InvalidRecords refuses a provider batch; the problem lists the records.
	InvalidRecords Code = "invalid_records"
	// ProviderNotRegistered refuses a client that is no institution's data provider.
	ProviderNotRegistered Code = "provider_not_registered"
	// MethodNotAllowed answers a known path asked with a method it does not
	// serve (the Allow header lists those it does).
	MethodNotAllowed Code = "method_not_allowed"
	// AccountTypeNotSupported refuses a call the account's type has no
	// answer for (FDX payment networks of a card account).
	AccountTypeNotSupported Code = "account_type_not_supported"
)

// E is an error with a code, a message safe to show, and a private cause.
type E struct {
	Code Code
	Msg  string // public: tells the developer what to fix
	Err  error  // private: logged, never sent
	// RetryAfter, when set, is sent as Retry-After (seconds).
	RetryAfter int
}

// Error implements error.
func (e *E) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Msg)
}

// Unwrap returns the cause.
func (e *E) Unwrap() error { return e.Err }

// New returns an error with a code and a public message.
func New(code Code, msg string) *E { return &E{Code: code, Msg: msg} }

// Wrap returns an error with a code, a public message and a private cause.
func Wrap(code Code, msg string, err error) *E { return &E{Code: code, Msg: msg, Err: err} }

// As extracts an *E from err; anything else is an internal error.
func As(err error) *E {
	var e *E
	if errors.As(err, &e) {
		return e
	}
	return &E{Code: Internal, Msg: "The server could not complete the request.", Err: err}
}

var statuses = map[Code]int{
	AccountNotFound:         http.StatusNotFound,
	PurposeProhibited:       http.StatusForbidden,
	PurposeNotConsented:     http.StatusForbidden,
	HistoryWindowExceeded:   http.StatusBadRequest,
	InvalidCursor:           http.StatusBadRequest,
	InvalidRequest:          http.StatusBadRequest,
	AccessExceeded:          http.StatusTooManyRequests,
	RateLimited:             http.StatusTooManyRequests,
	AuditUnavailable:        http.StatusServiceUnavailable,
	NotFound:                http.StatusNotFound,
	Conflict:                http.StatusConflict,
	PayloadTooLarge:         http.StatusRequestEntityTooLarge,
	Unavailable:             http.StatusServiceUnavailable,
	Internal:                http.StatusInternalServerError,
	InvalidRecords:          http.StatusUnprocessableEntity,
	ProviderNotRegistered:   http.StatusForbidden,
	MethodNotAllowed:        http.StatusMethodNotAllowed,
	AccountTypeNotSupported: http.StatusBadRequest,
}

var titles = map[Code]string{
	AccountNotFound:         "Account not found",
	PurposeProhibited:       "Purpose prohibited",
	PurposeNotConsented:     "Purpose not consented",
	HistoryWindowExceeded:   "History window exceeded",
	InvalidCursor:           "Invalid cursor",
	InvalidRequest:          "Invalid request",
	AccessExceeded:          "Access limit exceeded",
	RateLimited:             "Rate limited",
	AuditUnavailable:        "Audit log unavailable",
	NotFound:                "Not found",
	Conflict:                "Conflict",
	PayloadTooLarge:         "Payload too large",
	Unavailable:             "Service unavailable",
	Internal:                "Internal server error",
	InvalidRecords:          "Invalid records",
	ProviderNotRegistered:   "Provider not registered",
	MethodNotAllowed:        "Method not allowed",
	AccountTypeNotSupported: "Account type not supported",
}

// Status maps a code to its HTTP status.
func Status(c Code) int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Title is the short human title of a code.
func Title(c Code) string {
	if t, ok := titles[c]; ok {
		return t
	}
	return titles[Internal]
}
