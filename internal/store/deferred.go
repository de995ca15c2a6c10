package store

import "context"

// A deferred check lets one request's read of what can change be answered
// from what a node read before, on the condition that it still holds when
// the request's own write commits: the data API's token check answers
// from the token's state it read last, and the call's audit event is
// committed only while a query says that state is still the database's
// (Check). The request's first step opens the slot (WithDeferral); the
// reader that answered from memory puts its query there (Defer); the step
// that commits takes it (Deferred) and, when the check fails, serves the
// request again with the slot closed (WithoutDeferral), from fresh reads.

// Check is a query that returns a row while what a request was answered
// from is still the database's. Query is the caller's constant with ?
// placeholders, never input.
type Check struct {
	Query string
	Args  []any
}

// Deferred is one request's slot for the check of what it was answered
// from. Only the request's own goroutine uses it.
type Deferred struct {
	check *Check
}

// Check is the check deferred to the request's commit, or nil when every
// read of the request was live.
func (d *Deferred) Check() *Check {
	if d == nil {
		return nil
	}
	return d.check
}

type deferredKey struct{}

// WithDeferral is ctx with an open slot: readers may answer from memory
// and leave their check in it.
func WithDeferral(ctx context.Context) (context.Context, *Deferred) {
	d := &Deferred{}
	return context.WithValue(ctx, deferredKey{}, d), d
}

// WithoutDeferral is ctx with the slot closed: every read is live.
func WithoutDeferral(ctx context.Context) context.Context {
	return context.WithValue(ctx, deferredKey{}, (*Deferred)(nil))
}

// CanDefer reports whether ctx has an open slot that holds no check yet:
// a request defers at most one check.
func CanDefer(ctx context.Context) bool {
	d, _ := ctx.Value(deferredKey{}).(*Deferred)
	return d != nil && d.check == nil
}

// Defer leaves c in ctx's slot and reports whether it could (CanDefer);
// when it could not, the caller must read live.
func Defer(ctx context.Context, c Check) bool {
	d, _ := ctx.Value(deferredKey{}).(*Deferred)
	if d == nil || d.check != nil {
		return false
	}
	d.check = &c
	return true
}
