// Package image owns the image flows a person runs over what the store
// under a data root holds (images, rmi, inspect, prune, and what `run
// IMAGE` reads): it takes the store's lock the way each flow needs and
// resolves the names people type. Bringing images in (pull, load) is
// pkg/image/fetch, kept apart for its weight: this package is linked into
// the bulwark binary every container start maps, and must stay free of the
// registry client, TLS, HTTP and the decompressors (cmd/bulwark's
// TestStartPathStaysLight).
//
// The threats (malicious registries and archives, interrupted pulls) are
// met in the packages below it: pkg/image/ingest verifies, pkg/image/unpack
// refuses escapes and caps sizes, pkg/image/store commits atomically.
package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulwark-sec/bulwark/pkg/image/store"
	"github.com/bulwark-sec/bulwark/pkg/rootless/mapped"
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

// Open opens (making it if needed) the store under dataRoot. A rootless
// store removes what its user namespace owns through that namespace.
func Open(dataRoot string) (*store.Store, error) {
	st, err := store.Open(filepath.Join(dataRoot, "images"))
	if err == nil && os.Geteuid() != 0 {
		st.RemoveAll = mapped.RemoveAll
	}
	return st, err
}

// CheckOwners makes sure a rootless caller's store was unpacked with the
// id mapping the caller's containers get (recording it in a new store),
// so that the layers' owners are the image's inside them. Root's store
// holds the image's own ids: nothing to check.
func CheckOwners(st *store.Store) error {
	if os.Geteuid() == 0 {
		return nil
	}
	rec, err := mapped.Record()
	if err != nil {
		return err
	}
	return st.CheckIDMap(rec)
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
	if n := storedName(ref); n != ref {
		if im, err2 := st.Get(n); err2 == nil {
			return im, n, nil
		}
	}
	return store.Image{}, ref, err
}

// storedName is ref as pull.Name writes it into the store (busybox ->
// busybox:latest, docker.io/library/busybox:1 -> busybox:1), for valid
// references (TestStoredNameIsPullName); it does not validate, as an
// invalid one can only miss. Not pull.Name itself: its reference parser
// comes with the registry client, and with package-level regexps that
// every container start would compile (docs/ARCHITECTURE.md, "Two
// binaries").
func storedName(ref string) string {
	repo, sep, id := ref, ":", ""
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		// A tag before the digest is dropped, as the registry client does.
		repo, sep, id = ref[:i], "@", ref[i+1:]
		if j := strings.LastIndexByte(repo, ':'); j > strings.LastIndexByte(repo, '/') {
			repo = repo[:j]
		}
	} else if j := strings.LastIndexByte(ref, ':'); j > strings.LastIndexByte(ref, '/') {
		repo, id = ref[:j], ref[j+1:]
	}
	if id == "" {
		id = "latest"
	}
	registry := ""
	if first, rest, ok := strings.Cut(repo, "/"); ok && strings.ContainsAny(first, ".:") {
		registry, repo = first, rest
	}
	if registry == "" || registry == "docker.io" || registry == "index.docker.io" {
		repo = strings.TrimPrefix(repo, "library/")
	} else {
		repo = registry + "/" + repo
	}
	return repo + sep + id
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
	cfg, err := config(st, im)
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

// config reads the image's config blob, verified when it was stored.
func config(st *store.Store, im store.Image) (*v1.ConfigFile, error) {
	b, err := st.Blob(im.Config)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", im.ID, err)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", im.ID, err)
	}
	return &cfg, nil
}

// Removal says what rmi did for one reference.
type Removal struct {
	Untagged string // the name removed, "" when ref was an ID
	Deleted  string // the image ID removed, "" when other names remain
}

// Remove untags or deletes each ref, then drops the layers no image
// uses. It stops at the first unknown ref, naming it.
func Remove(dataRoot string, refs []string) ([]Removal, int, error) {
	st, unlock, err := openForRemoval(dataRoot)
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
	st, unlock, err := openForRemoval(dataRoot)
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	return st.Prune(true, layersInUse(dataRoot))
}

// openForRemoval opens the store under dataRoot and takes its lock
// exclusively, as removal must: pulls and loads hold it shared.
func openForRemoval(dataRoot string) (*store.Store, func(), error) {
	st, err := Open(dataRoot)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := st.Lock(true)
	if err != nil {
		return nil, nil, err
	}
	return st, unlock, nil
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
	// Whole or not at all (a temporary name the readers' glob skips,
	// renamed): a mark cut by a kill would keep nothing from prune.
	tmp := filepath.Join(snapshotDir, "."+inUseFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(snapshotDir, inUseFile))
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
