package accounts

import (
	"math"
	"testing"
)

func TestFormatMinor(t *testing.T) {
	tests := []struct {
		name     string
		amount   int64
		currency string
		want     string
	}{
		{"two decimals", 1234, "EUR", "12.34"},
		{"negative pads the fraction", -500, "USD", "-5.00"},
		{"zero", 0, "GBP", "0.00"},
		{"under one unit", 7, "EUR", "0.07"},
		{"negative under one unit", -7, "EUR", "-0.07"},
		{"JPY has no minor unit", 1234, "JPY", "1234"},
		{"KRW negative", -5000, "KRW", "-5000"},
		{"KWD has three decimals", 1234, "KWD", "1.234"},
		{"BHD small", 5, "BHD", "0.005"},
		{"JOD negative", -1000, "JOD", "-1.000"},
		{"unknown currency defaults to two", 100, "XYZ", "1.00"},
		{"max int64", math.MaxInt64, "USD", "92233720368547758.07"},
		{"min int64 does not overflow", math.MinInt64, "USD", "-92233720368547758.08"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatMinor(tt.amount, tt.currency); got != tt.want {
				t.Errorf("FormatMinor(%d, %s) = %q, want %q", tt.amount, tt.currency, got, tt.want)
			}
		})
	}
}

func TestParseMajor(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		currency string
		want     int64
		wantErr  bool
	}{
		{"two decimals", "12.34", "EUR", 1234, false},
		{"negative", "-5.00", "USD", -500, false},
		{"one decimal", "0.5", "EUR", 50, false},
		{"no decimals", "7", "EUR", 700, false},
		{"leading zeros", "007.10", "EUR", 710, false},
		{"negative zero", "-0", "EUR", 0, false},
		{"JPY integer", "1234", "JPY", 1234, false},
		{"KWD three decimals", "1.234", "KWD", 1234, false},
		{"max int64", "92233720368547758.07", "USD", math.MaxInt64, false},
		{"min int64", "-92233720368547758.08", "USD", math.MinInt64, false},

		{"too many decimals", "1.234", "EUR", 0, true},
		{"JPY takes no decimals", "100.0", "JPY", 0, true},
		{"KWD four decimals", "1.2345", "KWD", 0, true},
		{"empty", "", "EUR", 0, true},
		{"minus only", "-", "EUR", 0, true},
		{"no whole part", ".5", "EUR", 0, true},
		{"trailing point", "5.", "EUR", 0, true},
		{"plus sign", "+5", "EUR", 0, true},
		{"exponent", "1e3", "EUR", 0, true},
		{"thousands separator", "1,000.00", "EUR", 0, true},
		{"spaces", " 1.00", "EUR", 0, true},
		{"two points", "1.0.0", "EUR", 0, true},
		{"double minus", "--1", "EUR", 0, true},
		{"garbage", "abc", "EUR", 0, true},
		{"overflow", "92233720368547758.08", "USD", 0, true},
		{"negative overflow", "-92233720368547758.09", "USD", 0, true},
		{"bad currency", "1.00", "euro", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMajor(tt.in, tt.currency)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseMajor(%q, %s) error = %v, wantErr %v", tt.in, tt.currency, err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("ParseMajor(%q, %s) = %d, want %d", tt.in, tt.currency, got, tt.want)
			}
		})
	}
}

// Formatting then parsing gives back the amount, for every exponent.
func TestMoneyRoundTrip(t *testing.T) {
	amounts := []int64{0, 1, -1, 99, -100, 123456789, math.MaxInt64, math.MinInt64}
	for _, cur := range []string{"EUR", "JPY", "KWD", "CLF"} {
		for _, a := range amounts {
			s := FormatMinor(a, cur)
			got, err := ParseMajor(s, cur)
			if err != nil || got != a {
				t.Errorf("%s %d: formatted %q parsed to %d, %v", cur, a, s, got, err)
			}
		}
	}
}

// AppendMinor writes exactly what FormatMinor returns, for every exponent and
// at the ends of the int64 range, and keeps what dst already held.
func TestAppendMinorMatchesFormatMinor(t *testing.T) {
	amounts := []int64{0, 1, -1, 7, -7, 9, 10, 99, -100, 1000, -1001, 12345, 123456789, math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	for _, cur := range []string{"EUR", "JPY", "KWD", "CLF", "XYZ", ""} {
		for _, a := range amounts {
			want := FormatMinor(a, cur)
			if got := string(AppendMinor(nil, a, cur)); got != want {
				t.Errorf("AppendMinor(nil, %d, %q) = %q, want %q", a, cur, got, want)
			}
			if got := string(AppendMinor([]byte("x:"), a, cur)); got != "x:"+want {
				t.Errorf("AppendMinor(\"x:\", %d, %q) = %q, want %q", a, cur, got, "x:"+want)
			}
		}
	}
}

// FuzzAppendMinor: AppendMinor and FormatMinor agree on any amount and
// currency code.
func FuzzAppendMinor(f *testing.F) {
	f.Add(int64(1234), "EUR")
	f.Add(int64(-5), "KWD")
	f.Add(int64(math.MinInt64), "JPY")
	f.Add(int64(math.MaxInt64), "CLF")
	f.Fuzz(func(t *testing.T, amount int64, currency string) {
		want := FormatMinor(amount, currency)
		if got := string(AppendMinor(nil, amount, currency)); got != want {
			t.Fatalf("AppendMinor(%d, %q) = %q, FormatMinor = %q", amount, currency, got, want)
		}
	})
}

func BenchmarkAppendMinor(b *testing.B) {
	buf := make([]byte, 0, 32)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMinor(buf[:0], -123456, "EUR")
	}
}
