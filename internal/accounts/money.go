package accounts

import (
	"fmt"
	"strconv"
	"strings"
)

// minorDigits lists the ISO 4217 currencies whose minor unit is not a
// hundredth. Every other currency has two decimals.
var minorDigits = map[string]int{
	// No minor unit.
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
	"PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	// Thousandths.
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// Ten-thousandths (units of account).
	"CLF": 4, "UYW": 4,
}

// MinorDigits is the number of decimals of currency's minor unit (ISO 4217):
// 0 for JPY, 3 for KWD, 2 for most others and for unknown codes.
func MinorDigits(currency string) int {
	if d, ok := minorDigits[currency]; ok {
		return d
	}
	return 2
}

// FormatMinor renders an amount in minor units as a decimal string in major
// units: FormatMinor(1234, "EUR") == "12.34", FormatMinor(-500, "USD") ==
// "-5.00", FormatMinor(1234, "JPY") == "1234". It is exact: no floats.
func FormatMinor(amount int64, currency string) string {
	digits := MinorDigits(currency)
	// The decimal form of the magnitude, without converting math.MinInt64,
	// whose magnitude no int64 holds.
	s := strconv.FormatInt(amount, 10)
	s, negative := strings.CutPrefix(s, "-")
	sign := ""
	if negative {
		sign = "-"
	}
	if digits == 0 {
		return sign + s
	}
	if len(s) <= digits {
		s = strings.Repeat("0", digits-len(s)+1) + s
	}
	cut := len(s) - digits
	return sign + s[:cut] + "." + s[cut:]
}

// ParseMajor parses a decimal string in major units ("12.34", "-5", "0.5")
// into minor units of currency. It is strict so that a mistake is an error
// rather than a wrong amount: an optional leading "-", at least one digit
// before an optional ".", at most MinorDigits(currency) decimals (extra zeros
// included), no exponent, no separators, no spaces.
func ParseMajor(s, currency string) (int64, error) {
	if !validCurrency(currency) {
		return 0, fmt.Errorf("amount %q: currency %q is not an ISO 4217 code", s, currency)
	}
	digits := MinorDigits(currency)
	rest, neg := strings.CutPrefix(s, "-")
	whole, frac, hasPoint := strings.Cut(rest, ".")
	if !allDigits(whole) || (hasPoint && !allDigits(frac)) {
		return 0, fmt.Errorf("amount %q: want a decimal number such as \"12.34\" or \"-5\"", s)
	}
	if len(frac) > digits {
		return 0, fmt.Errorf("amount %q: %s has %d decimal places, got %d", s, currency, digits, len(frac))
	}
	frac += strings.Repeat("0", digits-len(frac))
	sign := ""
	if neg {
		sign = "-"
	}
	// ParseInt checks the range exactly, math.MinInt64 included.
	n, err := strconv.ParseInt(sign+whole+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: out of range", s)
	}
	return n, nil
}

// allDigits reports whether s is a non-empty run of ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validCurrency reports whether c has the shape of an ISO 4217 code.
func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// AppendMinor appends FormatMinor(amount, currency) to dst and returns the
// extended slice. It is the form for writers that build a whole response in
// one buffer: no string is allocated per amount.
func AppendMinor(dst []byte, amount int64, currency string) []byte {
	digits := MinorDigits(currency)
	// The decimal form is built on the stack first, as FormatMinor builds
	// it, so that math.MinInt64 needs no special case either.
	var buf [24]byte
	s := strconv.AppendInt(buf[:0], amount, 10)
	if s[0] == '-' {
		dst = append(dst, '-')
		s = s[1:]
	}
	if digits == 0 {
		return append(dst, s...)
	}
	if len(s) <= digits {
		// Less than one major unit: 7 in EUR is "0.07".
		dst = append(dst, '0', '.')
		for range digits - len(s) {
			dst = append(dst, '0')
		}
		return append(dst, s...)
	}
	cut := len(s) - digits
	dst = append(dst, s[:cut]...)
	dst = append(dst, '.')
	return append(dst, s[cut:]...)
}
