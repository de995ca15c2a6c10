package store

import "testing"

func TestPlaceholders(t *testing.T) {
	for _, c := range []struct {
		rows, cols int
		want       string
	}{
		{1, 1, "(?)"},
		{1, 3, "(?, ?, ?)"},
		{3, 2, "(?, ?), (?, ?), (?, ?)"},
	} {
		if got := Placeholders(c.rows, c.cols); got != c.want {
			t.Errorf("Placeholders(%d, %d) = %q, want %q", c.rows, c.cols, got, c.want)
		}
	}
}

func TestNumberParams(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                       "SELECT 1",
		"SELECT 1 WHERE a = ? AND b = ?": "SELECT 1 WHERE a = $1 AND b = $2",
		"?,?,?,?,?,?,?,?,?,?,?":          "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11",
	} {
		if got := NumberParams(in); got != want {
			t.Errorf("NumberParams(%q) = %q, want %q", in, got, want)
		}
	}
}
