// Package tailbuf keeps the end of an output stream the runtime quotes but
// does not control: a hook's stdout and stderr, QEMU's stderr, a guest's
// serial console. The threat is a writer that never stops (a looping hook,
// a hostile guest): what it writes must stay bounded in the runtime's
// memory, and the end, where the reason for a failure usually is, is what
// is kept.
//
// When not to use it: for output the person asked to keep (a detached
// container's log), which pkg/containerlog stores with its own size cap.
package tailbuf

import "sync"

// Buffer keeps the last max bytes written to it. It is safe for
// concurrent writers (QEMU's stderr and a reader of the error).
type Buffer struct {
	mu  sync.Mutex
	max int
	b   []byte
	cut bool
}

// New returns a Buffer that keeps the last max bytes.
func New(max int) *Buffer { return &Buffer{max: max} }

// Write keeps the end of p and what came before it, up to max bytes; it
// never fails.
func (t *Buffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		t.cut = t.cut || len(p) > t.max || len(t.b) > 0
		t.b = append(t.b[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.b) + len(p) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.cut = true
	}
	t.b = append(t.b, p...)
	return n, nil
}

// String returns what is kept.
func (t *Buffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// Truncated tells whether anything written was dropped.
func (t *Buffer) Truncated() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cut
}
