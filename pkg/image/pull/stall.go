package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// StallError is what a request that waited too long fails with: what was
// being fetched (a manifest by tag or digest, a blob by digest) and for
// how long nothing came.
type StallError struct {
	What string
	D    time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("%s: the registry sent nothing for %v (pull --timeout sets how long to wait)", e.What, e.D)
}

// fetched names what a registry URL is: "manifest v1" for
// /v2/NAME/manifests/v1, "blob sha256:..." for /v2/NAME/blobs/sha256:...,
// the URL itself otherwise (a token endpoint, /v2/).
func fetched(req *http.Request) string {
	p := req.URL.Path
	for _, kind := range []string{"manifests", "blobs"} {
		if i := strings.LastIndex(p, "/"+kind+"/"); i >= 0 {
			return strings.TrimSuffix(kind, "s") + " " + p[i+len(kind)+2:]
		}
	}
	return req.Method + " " + req.URL.Redacted()
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
	st := &StallError{What: fetched(req), D: s.d}
	t := time.AfterFunc(s.d, func() { cancel(st) })
	resp, err := s.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		t.Stop()
		cause := context.Cause(ctx)
		cancel(nil)
		if errors.Is(cause, st) {
			return nil, st
		}
		return nil, err
	}
	resp.Body = &stallBody{rc: resp.Body, t: t, d: s.d, ctx: ctx, cancel: cancel, st: st}
	return resp, nil
}

type stallBody struct {
	rc     io.ReadCloser
	t      *time.Timer
	d      time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
	st     *StallError
	once   sync.Once
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.t.Reset(b.d)
	}
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), b.st) {
		return n, b.st
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
