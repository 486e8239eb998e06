// Package pull fetches an image from a registry (v2 API) for ingest: auth
// from ~/.docker/config.json and its credential helpers, a multi-arch
// index resolved to the host's platform, and names written the way people
// write them.
//
// The threat is a registry that lies or fails: it is answered by
// pkg/image/ingest, which verifies every byte this package hands it
// against the manifest and config digests. A registry that answers 5xx is
// retried a few times, then named in the error; one that sends nothing for
// a while (pull --timeout, a minute unless the person says)) fails the pull
// naming the manifest or blob it stalled in (stall.go). Do not use it for
// archives (pkg/image/load).
package pull

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Platform is the host's, which a multi-arch index is resolved to.
func Platform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// Name returns ref as the store records it: Docker Hub's registry and
// "library/" left out ("alpine:latest"), a tag added when there is neither
// tag nor digest.
func Name(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	repo := r.Context()
	n := repo.RepositoryStr()
	if reg := repo.RegistryStr(); reg != name.DefaultRegistry {
		n = reg + "/" + n
	} else {
		n = strings.TrimPrefix(n, "library/")
	}
	if d, ok := r.(name.Digest); ok {
		return n + "@" + d.DigestStr(), nil
	}
	return n + ":" + r.Identifier(), nil
}

// Image resolves ref to the host's image and returns it with its manifest
// digest. Nothing is downloaded but the manifest(s) and config until
// the caller reads the layers. Any request to the registry that receives
// nothing for timeout, which must be given, fails, then and when the layers
// are read. extra options (a transport, a retry policy) go after the
// defaults.
func Image(ctx context.Context, ref string, timeout time.Duration, extra ...remote.Option) (v1.Image, string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	if timeout <= 0 {
		// Without one a hung registry holds the pull and the store's
		// lock for ever.
		return nil, "", fmt.Errorf("pull %s: no timeout given", ref)
	}
	opts := append([]remote.Option{
		remote.WithTransport(stallTransport{base: remote.DefaultTransport, d: timeout}),
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(Platform()),
		remote.WithUserAgent("bulwark"),
	}, extra...)
	img, err := remote.Image(r, opts...)
	if st := (*StallError)(nil); errors.As(err, &st) {
		// Without the HTTP client's wrapping, which repeats the URL.
		return nil, "", fmt.Errorf("pull %s: %w", ref, st)
	}
	if err != nil {
		return nil, "", fmt.Errorf("pull %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, "", fmt.Errorf("pull %s: manifest digest: %w", ref, err)
	}
	return img, d.String(), nil
}
