package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// defaultStall is how long a pull waits for a registry's next byte.
const defaultStall = 60 * time.Second

// stallTimeout is BULWARK_PULL_TIMEOUT (a Go duration: 30s, 2m), or
// defaultStall when unset or unreadable.
func stallTimeout() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("BULWARK_PULL_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	return defaultStall
}

// errStall is what a request that waited too long fails with.
type errStall time.Duration

func (e errStall) Error() string {
	return fmt.Sprintf("the registry sent nothing for %v (BULWARK_PULL_TIMEOUT sets how long to wait)", time.Duration(e))
}

// stallTransport fails a request when the registry sends nothing for d:
// no connection, no response headers, or no more of a body. A registry
// that accepts a connection and then hangs would otherwise hold the pull,
// and the store's lock, for ever; a slow but moving download is fine.
type stallTransport struct {
	base http.RoundTripper
	d    time.Duration
}

func (s stallTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	t := time.AfterFunc(s.d, func() { cancel(errStall(s.d)) })
	resp, err := s.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		t.Stop()
		cause := context.Cause(ctx)
		cancel(nil)
		var st errStall
		if errors.As(cause, &st) {
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), st)
		}
		return nil, err
	}
	resp.Body = &stallBody{rc: resp.Body, t: t, d: s.d, ctx: ctx, cancel: cancel}
	return resp, nil
}

type stallBody struct {
	rc     io.ReadCloser
	t      *time.Timer
	d      time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
	once   sync.Once
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.t.Reset(b.d)
	}
	if err != nil && err != io.EOF {
		var st errStall
		if errors.As(context.Cause(b.ctx), &st) {
			return n, st
		}
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.once.Do(func() {
		b.t.Stop()
		b.cancel(nil)
	})
	return b.rc.Close()
}
