package oauth

import (
	"net/http"
	"sync"
	"testing"
)

// race runs n copies of req at once and counts the 200 and 5xx answers.
func race(n int, req func() int) (ok, failed int) {
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for range n {
		wg.Go(func() {
			code := req()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case code == http.StatusOK:
				ok++
			case code >= 500:
				failed++
			}
		})
	}
	wg.Wait()
	return ok, failed
}

// TestConcurrentRedemption pins single use under concurrency (SPEC §8):
// one code, one refresh token, redeemed at once by several requests, wins
// exactly once.
func TestConcurrentRedemption(t *testing.T) {
	e := newEnv(t)
	f := appFlow()
	code := e.code(f)
	if ok, failed := race(4, func() int { return e.exchange(f, appID, appSecret, code).Code }); ok != 1 || failed != 0 {
		t.Errorf("code redeemed %d times, %d server errors", ok, failed)
	}
	tk := e.authorize(appFlow())
	if ok, failed := race(4, func() int { return e.refresh(appID, appSecret, tk.RefreshToken).Code }); ok != 1 || failed != 0 {
		t.Errorf("refresh token rotated %d times, %d server errors", ok, failed)
	}
}
