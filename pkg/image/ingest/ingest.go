// Package ingest puts one image, from a registry or an archive (a
// go-containerregistry v1.Image), into the store: config and manifest
// verified and stored, each layer it lacks streamed, decompressed (gzip,
// zstd or none, by magic bytes) and unpacked once.
//
// The threat is a source that lies: a registry or archive whose layer bytes
// do not match the digest the manifest names, whose uncompressed stream
// does not match the config's diffID, that sends more than the manifest's
// size or a decompression bomb, or that stops halfway. Each layer is
// unpacked into a temp dir and committed only once the compressed digest,
// the size and the diffID all checked out; on any error the temp dir goes
// and the store holds what it held before plus whole layers only, so a
// retry continues from the layers already committed.
package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"

	"github.com/bulwark-sec/bulwark/pkg/image/store"
	"github.com/bulwark-sec/bulwark/pkg/image/unpack"
)

// Options for one image.
type Options struct {
	Names []string
	// Digest is the manifest digest the image was fetched by or resolved
	// to (a pull), "" when the source has none worth keeping (docker-archive).
	Digest string
	// Uncompressed reads layers with Uncompressed() and checks the diffID
	// only: docker-archive stores layers uncompressed, and asking it for
	// compressed digests would gzip every layer twice.
	Uncompressed bool
	Unpack       unpack.Options
	// Unpacker unpacks a layer into a temp dir; nil is unpack.Unpack.
	// A rootless store's is pkg/rootless/mapped.Unpack, which keeps the
	// image's owners.
	Unpacker func(r io.Reader, dir string, opts unpack.Options) (unpack.Stats, error)
	// Progress gets one line per step; nil for none.
	Progress func(format string, args ...any)
	// Meter, when set, is told of each layer as it is read (i of n,
	// 0-based; size the bytes its source will send, 0 when unknown) and
	// returns what counts them and what is told the layer is done.
	Meter func(i, n int, id string, size int64) (add func(int), done func(error))
}

// Image ingests img under st, whose lock the caller holds shared.
func Image(ctx context.Context, st *store.Store, img v1.Image, opts Options) (store.Image, error) {
	say := opts.Progress
	if say == nil {
		say = func(string, ...any) {}
	}
	name := "image"
	if len(opts.Names) > 0 {
		name = opts.Names[0]
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return store.Image{}, fmt.Errorf("%s: read config: %w", name, err)
	}
	cfgDigest := digestOf(rawCfg)
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return store.Image{}, fmt.Errorf("%s: parse config %s: %w", name, cfgDigest, err)
	}
	var manifestDigest string
	var rawManifest []byte
	if !opts.Uncompressed {
		m, err := img.Manifest()
		if err != nil {
			return store.Image{}, fmt.Errorf("%s: read manifest: %w", name, err)
		}
		if m.Config.Digest.String() != cfgDigest {
			return store.Image{}, fmt.Errorf("%s: config hashes to %s, the manifest names %s (digest mismatch)", name, cfgDigest, m.Config.Digest)
		}
		if rawManifest, err = img.RawManifest(); err != nil {
			return store.Image{}, fmt.Errorf("%s: read manifest: %w", name, err)
		}
		manifestDigest = digestOf(rawManifest)
		if opts.Digest != "" && opts.Digest != manifestDigest {
			return store.Image{}, fmt.Errorf("%s: manifest hashes to %s, want %s (digest mismatch)", name, manifestDigest, opts.Digest)
		}
	}
	layers, err := img.Layers()
	if err != nil {
		return store.Image{}, fmt.Errorf("%s: list layers: %w", name, err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return store.Image{}, fmt.Errorf("%s: %d layers but the config lists %d diff_ids", name, len(layers), len(cfg.RootFS.DiffIDs))
	}
	out := store.Image{
		ID:       cfgDigest,
		Names:    opts.Names,
		Digest:   opts.Digest,
		Config:   cfgDigest,
		Created:  time.Now().UTC(),
		Platform: cfg.OS + "/" + cfg.Architecture,
	}
	if cfg.Variant != "" {
		out.Platform += "/" + cfg.Variant
	}
	for i, l := range layers {
		diffID := cfg.RootFS.DiffIDs[i].String()
		out.Layers = append(out.Layers, diffID)
		if err := ctx.Err(); err != nil {
			return store.Image{}, fmt.Errorf("%s: %w", name, err)
		}
		if st.HasLayer(diffID) {
			say("%s: layer %d/%d %s already present", name, i+1, len(layers), short(diffID))
			if opts.Meter != nil {
				_, done := opts.Meter(i, len(layers), short(diffID), 0)
				done(nil)
			}
			out.Size += st.LayerSize(diffID)
			continue
		}
		say("%s: layer %d/%d %s unpacking", name, i+1, len(layers), short(diffID))
		var add func(int)
		var done func(error)
		if opts.Meter != nil {
			size, _ := l.Size()
			if opts.Uncompressed {
				size = 0 // the source sends the uncompressed tar: its size is unknown here
			}
			add, done = opts.Meter(i, len(layers), short(diffID), size)
		}
		n, err := layer(ctx, st, l, diffID, opts, add)
		if done != nil {
			done(err)
		}
		if err != nil {
			return store.Image{}, fmt.Errorf("%s: layer %d (diffID %s): %w", name, i+1, diffID, err)
		}
		out.Size += n
	}
	if err := st.PutBlob(cfgDigest, rawCfg); err != nil {
		return store.Image{}, fmt.Errorf("%s: %w", name, err)
	}
	if rawManifest != nil {
		if err := st.PutBlob(manifestDigest, rawManifest); err != nil {
			return store.Image{}, fmt.Errorf("%s: %w", name, err)
		}
		out.Manifest = manifestDigest
		if out.Digest == "" {
			out.Digest = manifestDigest
		}
	}
	if err := st.Add(out); err != nil {
		return store.Image{}, fmt.Errorf("%s: %w", name, err)
	}
	say("%s: stored as %s", name, short(cfgDigest))
	return out, nil
}

func layer(ctx context.Context, st *store.Store, l v1.Layer, diffID string, opts Options, add func(int)) (int64, error) {
	var (
		src        io.ReadCloser
		compressed hash.Hash
		wantDigest string
		wantSize   int64
		counter    *countReader
		err        error
	)
	if opts.Uncompressed {
		src, err = l.Uncompressed()
	} else {
		d, derr := l.Digest()
		if derr != nil {
			return 0, fmt.Errorf("digest: %w", derr)
		}
		wantDigest = d.String()
		if wantSize, err = l.Size(); err != nil {
			return 0, fmt.Errorf("size: %w", err)
		}
		src, err = l.Compressed()
	}
	if err != nil {
		return 0, fmt.Errorf("open: %w", err)
	}
	defer src.Close()
	var r io.Reader = ctxReader{ctx, src}
	if add != nil {
		r = meterReader{r, add}
	}
	if !opts.Uncompressed {
		compressed = sha256.New()
		// One byte more than promised, to notice a source that sends more.
		counter = &countReader{r: io.LimitReader(r, wantSize+1)}
		r = io.TeeReader(counter, compressed)
	}
	raw, err := decompress(r)
	if err != nil {
		return 0, err
	}
	defer raw.Close()
	uncompressed := sha256.New()
	tr := io.TeeReader(raw, uncompressed)

	tmp, err := st.LayerTempDir()
	if err != nil {
		return 0, err
	}
	defer st.RemoveTemp(tmp) // gone after a commit; what is left on failure
	unpacker := opts.Unpacker
	if unpacker == nil {
		unpacker = unpack.Unpack
	}
	stats, err := unpacker(tr, tmp, opts.Unpack)
	if err != nil {
		return 0, err
	}
	// Tar ends before its stream does (padding): hash all of it.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return 0, fmt.Errorf("read to the end: %w", err)
	}
	if !opts.Uncompressed {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return 0, fmt.Errorf("read to the end: %w", err)
		}
		if counter.n != wantSize {
			return 0, fmt.Errorf("blob %s: got %d bytes, the manifest says %d (truncated or padded)", wantDigest, counter.n, wantSize)
		}
		if got := "sha256:" + hex.EncodeToString(compressed.Sum(nil)); got != wantDigest {
			return 0, fmt.Errorf("blob hashes to %s, the manifest names %s (digest mismatch)", got, wantDigest)
		}
	}
	if got := "sha256:" + hex.EncodeToString(uncompressed.Sum(nil)); got != diffID {
		return 0, fmt.Errorf("uncompressed layer hashes to %s, the config names %s (digest mismatch)", got, diffID)
	}
	if err := st.CommitLayer(diffID, tmp, stats.Bytes); err != nil {
		return 0, err
	}
	return stats.Bytes, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// meterReader tells add of every byte read.
type meterReader struct {
	r   io.Reader
	add func(int)
}

func (m meterReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if n > 0 {
		m.add(n)
	}
	return n, err
}

// ctxReader stops a read at a cancelled context (SIGINT during a pull).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// maxZstdWindow bounds the decoder's memory; zstd's own tools need
// --long to go past 128 MiB.
const maxZstdWindow = 128 << 20

func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return z, nil
	case bytes.HasPrefix(head, zstdMagic):
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return z.IOReadCloser(), nil
	default:
		return io.NopCloser(br), nil
	}
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func short(d string) string {
	if len(d) > 19 {
		return d[7:19]
	}
	return d
}
