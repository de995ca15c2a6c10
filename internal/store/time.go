package store

import "time"

// Micros converts t to the stored form: unix microseconds, UTC.
func Micros(t time.Time) int64 { return t.UTC().UnixMicro() }

// FromMicros converts a stored time back.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// MicrosPtr converts an optional time.
func MicrosPtr(t *time.Time) *int64 {
	if t == nil || t.IsZero() {
		return nil
	}
	v := Micros(*t)
	return &v
}

// FromMicrosPtr converts an optional stored time.
func FromMicrosPtr(us *int64) *time.Time {
	if us == nil {
		return nil
	}
	t := FromMicros(*us)
	return &t
}
