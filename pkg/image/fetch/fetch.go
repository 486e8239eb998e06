// Package fetch brings images into the store under a data root: pull from
// a registry, load from an archive or an OCI layout. It takes the store's
// lock the way each needs and decides what the unpacker may do on this
// host; pkg/image owns the flows over what is already stored.
//
// It is split from pkg/image for its weight, not its threat (that is met
// below it: pkg/image/ingest verifies, pkg/image/unpack refuses escapes and
// caps sizes): a registry client, TLS, HTTP and the decompressors are most
// of a Go binary, so only bulwark-tools links this package, never the
// bulwark binary every container start maps and re-executes
// (docs/ARCHITECTURE.md, "Two binaries").
package fetch

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulwark-sec/bulwark/pkg/image"
	"github.com/bulwark-sec/bulwark/pkg/image/ingest"
	"github.com/bulwark-sec/bulwark/pkg/image/load"
	"github.com/bulwark-sec/bulwark/pkg/image/pull"
	"github.com/bulwark-sec/bulwark/pkg/image/store"
	"github.com/bulwark-sec/bulwark/pkg/image/unpack"
	"github.com/bulwark-sec/bulwark/pkg/rootless/mapped"
)

// Options for pull and load.
type Options struct {
	// Progress gets a line per step; nil for quiet.
	Progress func(format string, args ...any)
	// Meter counts each layer's bytes (ingest.Options.Meter), for bars.
	Meter func(i, n int, id string, size int64) (add func(int), done func(error))
	// MaxLayerSize caps each layer's uncompressed size (0: unpack's default).
	MaxLayerSize int64
	// Timeout fails a pull whose registry sends nothing for that long;
	// a pull needs one.
	Timeout time.Duration
	// Remote options for pulls (tests pass a quick retry policy).
	Remote []remote.Option
}

// ingestOptions decides what the unpacker may do: root chowns and makes
// devices; a rootless caller unpacks in its user namespace, with the
// image's owners mapped as its containers map them.
func ingestOptions(o Options) ingest.Options {
	root := os.Geteuid() == 0
	opts := ingest.Options{
		Progress: o.Progress,
		Meter:    o.Meter,
		Unpack:   unpack.Options{Privileged: root, UserXattr: !root, MaxSize: o.MaxLayerSize},
	}
	if !root {
		opts.Unpacker = mapped.Unpack
	}
	return opts
}

// open opens the store under dataRoot and takes its shared lock.
func open(dataRoot string) (*store.Store, func(), error) {
	st, err := image.Open(dataRoot)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := st.Lock(false)
	if err != nil {
		return nil, nil, err
	}
	if err := image.CheckOwners(st); err != nil {
		unlock()
		return nil, nil, err
	}
	return st, unlock, nil
}

// Pull fetches ref for the host's platform into the store.
func Pull(ctx context.Context, dataRoot, ref string, o Options) (store.Image, error) {
	n, err := pull.Name(ref)
	if err != nil {
		return store.Image{}, err
	}
	st, unlock, err := open(dataRoot)
	if err != nil {
		return store.Image{}, err
	}
	defer unlock()
	img, digest, err := pull.Image(ctx, ref, o.Timeout, o.Remote...)
	if err != nil {
		return store.Image{}, err
	}
	iopts := ingestOptions(o)
	iopts.Names, iopts.Digest = []string{n}, digest
	return ingest.Image(ctx, st, img, iopts)
}

// Load reads every image in the archive or OCI layout at path ("-" or ""
// for stdin, spooled into the store's tmp first) into the store.
func Load(ctx context.Context, dataRoot, path string, stdin io.Reader, o Options) ([]store.Image, error) {
	st, unlock, err := open(dataRoot)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if path == "" || path == "-" {
		tmp, err := st.CopyTo(stdin)
		if err != nil {
			return nil, fmt.Errorf("load: read stdin: %w", err)
		}
		defer os.Remove(tmp)
		ims, err := load.File(ctx, st, tmp, ingestOptions(o))
		if err != nil {
			return ims, fmt.Errorf("stdin: %w", err)
		}
		return ims, nil
	}
	return load.File(ctx, st, path, ingestOptions(o))
}
