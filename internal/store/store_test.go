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
