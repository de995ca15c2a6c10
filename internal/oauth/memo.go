package oauth

import "sync"

// memo is a map of at most size entries, safe for concurrent use: a put of
// a new key into a full memo starts it again empty (a node's caches of
// client rows and token records hold far fewer entries than that in
// normal use; the bound is against unbounded growth, not an eviction
// policy).
type memo[V any] struct {
	size int
	mu   sync.RWMutex
	m    map[string]V
}

func newMemo[V any](size int) *memo[V] { return &memo[V]{size: size} }

func (c *memo[V]) get(key string) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[key]
	return v, ok
}

func (c *memo[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && (c.m == nil || len(c.m) >= c.size) {
		c.m = make(map[string]V)
	}
	c.m[key] = v
}

func (c *memo[V]) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}
