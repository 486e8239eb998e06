// Package image is the one owner of the image flows a person runs (pull,
// load, images, rmi, inspect, prune) over the store under a data root:
// it takes the store's lock the way each flow needs, resolves the names
// people type, and decides what the unpacker may do on this host.
//
// The threats (malicious registries and archives, interrupted pulls) are
// met in the packages below it: pkg/image/ingest verifies, pkg/image/unpack
// refuses escapes and caps sizes, pkg/image/store commits atomically.
package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulwark-sec/bulwark/pkg/image/ingest"
	"github.com/bulwark-sec/bulwark/pkg/image/load"
	"github.com/bulwark-sec/bulwark/pkg/image/pull"
	"github.com/bulwark-sec/bulwark/pkg/image/store"
	"github.com/bulwark-sec/bulwark/pkg/image/unpack"
)

// DefaultDataRoot is /var/lib/bulwark for root, else
// $XDG_DATA_HOME/bulwark (~/.local/share/bulwark).
func DefaultDataRoot() string {
	if os.Geteuid() == 0 {
		return "/var/lib/bulwark"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "bulwark")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local/share/bulwark")
	}
	return "/var/lib/bulwark"
}

// Options for pull and load.
type Options struct {
	// Progress gets a line per step; nil for quiet.
	Progress func(format string, args ...any)
	// MaxLayerSize caps each layer's uncompressed size (0: unpack's default).
	MaxLayerSize int64
	// Remote options for pulls (tests pass a quick retry policy).
	Remote []remote.Option
}

// Open opens (making it if needed) the store under dataRoot.
func Open(dataRoot string) (*store.Store, error) {
	return store.Open(filepath.Join(dataRoot, "images"))
}

func ingestOptions(o Options) ingest.Options {
	root := os.Geteuid() == 0
	return ingest.Options{
		Progress: o.Progress,
		Unpack:   unpack.Options{Privileged: root, UserXattr: !root, MaxSize: o.MaxLayerSize},
	}
}

// Pull fetches ref for the host's platform into the store.
func Pull(ctx context.Context, dataRoot, ref string, o Options) (store.Image, error) {
	n, err := pull.Name(ref)
	if err != nil {
		return store.Image{}, err
	}
	st, err := Open(dataRoot)
	if err != nil {
		return store.Image{}, err
	}
	unlock, err := st.Lock(false)
	if err != nil {
		return store.Image{}, err
	}
	defer unlock()
	img, digest, err := pull.Image(ctx, ref, o.Remote...)
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
	st, err := Open(dataRoot)
	if err != nil {
		return nil, err
	}
	unlock, err := st.Lock(false)
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

// List returns the stored images, newest first.
func List(dataRoot string) ([]store.Image, error) {
	st, err := Open(dataRoot)
	if err != nil {
		return nil, err
	}
	return st.Images()
}

// find looks ref up as typed, then as pull.Name writes it.
func find(st *store.Store, ref string) (store.Image, string, error) {
	im, err := st.Get(ref)
	if err == nil {
		return im, ref, nil
	}
	if n, nerr := pull.Name(ref); nerr == nil && n != ref {
		if im, err2 := st.Get(n); err2 == nil {
			return im, n, nil
		}
	}
	return store.Image{}, ref, err
}

// Inspection is what `bulwark image inspect` prints.
type Inspection struct {
	store.Image
	Layers []LayerInfo    `json:"layerDirs"`
	Config *v1.ConfigFile `json:"config"`
}

// LayerInfo names an unpacked layer's directory.
type LayerInfo struct {
	DiffID string `json:"diffID"`
	Dir    string `json:"dir"`
}

// Inspect returns the image's record, config and layer directories.
func Inspect(dataRoot, ref string) (Inspection, error) {
	st, err := Open(dataRoot)
	if err != nil {
		return Inspection{}, err
	}
	im, _, err := find(st, ref)
	if err != nil {
		return Inspection{}, err
	}
	cfg, err := ingest.Config(st, im)
	if err != nil {
		return Inspection{}, err
	}
	out := Inspection{Image: im, Config: cfg}
	for _, l := range im.Layers {
		p, err := st.LayerPath(l)
		if err != nil {
			return Inspection{}, err
		}
		out.Layers = append(out.Layers, LayerInfo{DiffID: l, Dir: p})
	}
	return out, nil
}

// Removal says what rmi did for one reference.
type Removal struct {
	Untagged string // the name removed, "" when ref was an ID
	Deleted  string // the image ID removed, "" when other names remain
}

// Remove untags or deletes each ref, then drops the layers no image
// uses. It stops at the first unknown ref, naming it.
func Remove(dataRoot string, refs []string) ([]Removal, int, error) {
	st, err := Open(dataRoot)
	if err != nil {
		return nil, 0, err
	}
	unlock, err := st.Lock(true)
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	var out []Removal
	for _, ref := range refs {
		im, n, err := find(st, ref)
		if err != nil {
			return out, 0, err
		}
		var r Removal
		if slices.Contains(im.Names, n) {
			r.Untagged = n
		}
		if r.Deleted, err = st.Remove(n); err != nil {
			return out, 0, err
		}
		out = append(out, r)
	}
	_, freed, err := st.Prune(false, layersInUse(dataRoot))
	return out, freed, err
}

// Prune removes images without a name and every layer and blob no image
// uses, and what killed pulls left in tmp/.
func Prune(dataRoot string) (removed []string, freedLayers int, err error) {
	st, err := Open(dataRoot)
	if err != nil {
		return nil, 0, err
	}
	unlock, err := st.Lock(true)
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	return st.Prune(true, layersInUse(dataRoot))
}

// IsNotFound reports an unknown image.
func IsNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// SnapshotsDir holds the containers' snapshots (pkg/image/snapshot), each
// a directory that MarkInUse marks with the layers under it.
func SnapshotsDir(dataRoot string) string { return filepath.Join(dataRoot, "containers") }

const inUseFile = "layers.json"

// MarkInUse records in a snapshot directory the layers mounted there, so
// that rmi and prune keep them while the container runs (its delete
// removes the directory, and with it the mark).
func MarkInUse(snapshotDir string, diffIDs []string) error {
	b, err := json.Marshal(diffIDs)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(snapshotDir, inUseFile), b, 0o600)
}

// layersInUse reads every snapshot's mark. An unreadable mark keeps
// nothing: it can only be a snapshot being made or torn down.
func layersInUse(dataRoot string) []string {
	marks, _ := filepath.Glob(filepath.Join(SnapshotsDir(dataRoot), "*", inUseFile))
	var out []string
	for _, m := range marks {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var ls []string
		if json.Unmarshal(b, &ls) == nil {
			out = append(out, ls...)
		}
	}
	return out
}
