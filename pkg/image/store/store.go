// Package store is Bulwark's image store under the data root: small blobs
// (manifests, configs) by digest, each layer unpacked once into a directory
// named by its diffID and shared by every image that has it, and an index
// of images and their names.
//
// The threat is a store that lies after a crash, a kill or a concurrent
// command: a half-written blob or half-unpacked layer that a later run
// uses, an index that names a layer that is not there, a prune that deletes
// a layer a pull is writing. Blobs are verified against their digest before
// they are renamed into place; a layer is unpacked into a temp dir, synced
// and renamed, so layers/ only ever holds complete layers; the index is
// replaced by rename. Pulls hold the store's lock shared, rmi and prune
// exclusive; the index has its own short lock. The store's root is 0700:
// layers hold the image's setuid files, which host users must not reach.
//
// It does not fetch or parse images (pkg/image/ingest does) and it trusts
// the digests its caller verified.
package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotFound is returned for a name or ID the store does not hold.
var ErrNotFound = errors.New("no such image")

// IsDigest reports a "sha256:" and 64 lowercase hex digits. (Not a
// regexp: package-level regexps compile on every start of the binary,
// container starts included.)
func IsDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Image is one index record. ID is the config's digest (as Docker's image
// ID); Layers are diffIDs, bottom first.
type Image struct {
	ID       string    `json:"id"`
	Names    []string  `json:"names,omitempty"`
	Digest   string    `json:"digest,omitempty"` // manifest digest, when known (pulled)
	Config   string    `json:"config"`           // blob digest of the config
	Manifest string    `json:"manifest,omitempty"`
	Layers   []string  `json:"layers"`
	Size     int64     `json:"size"` // unpacked bytes of regular files
	Created  time.Time `json:"created"`
	Platform string    `json:"platform,omitempty"`
}

type index struct {
	Images []Image `json:"images"`
}

// Store is a content store rooted at Root.
type Store struct {
	Root string
	// RemoveAll removes a tree of the store (a killed pull's temp dir, a
	// pruned layer); nil is os.RemoveAll. A rootless store's layers hold
	// files of the caller's subordinate ids, which only its user
	// namespace may remove (pkg/rootless/mapped).
	RemoveAll func(path string) error
}

func (s *Store) removeAll(p string) error {
	if s.RemoveAll != nil {
		return s.RemoveAll(p)
	}
	return os.RemoveAll(p)
}

// RemoveTemp removes a temp dir of TempDir (what a failed unpack left);
// nothing there is not an error.
func (s *Store) RemoveTemp(p string) error {
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return s.removeAll(p)
}

// ErrIDMap is wrapped when a rootless store's layers were unpacked with
// another id mapping than the caller's now.
var ErrIDMap = errors.New("image store unpacked with another id mapping")

const idMapFile = "idmap"

// CheckIDMap makes sure the store's layers were unpacked with the id
// mapping want (pkg/rootless/mapped: the ids files hold are the host ids
// that mapping gives the image's ids), recording it in a store that has
// no layer yet. A store whose mapping differs, or whose layers predate
// the record (unpacked without owners), is refused with what to do: its
// files would show the wrong owners inside containers.
func (s *Store) CheckIDMap(want string) error {
	p := filepath.Join(s.Root, idMapFile)
	b, err := os.ReadFile(p)
	ents := s.layerNames()
	if err == nil {
		if string(b) == want {
			return nil
		}
		if len(ents) == 0 {
			// Nothing unpacked under the old ranges is left.
			return s.writeAtomic(p, []byte(want))
		}
		return fmt.Errorf("%w: %s records\n%s\nbut /etc/subuid and /etc/subgid now give you\n%s\n"+
			"its files would have the wrong owners in containers; restore the earlier ranges, or have root remove %s (rm -rf, as its files belong to ids you no longer map) and pull or load your images again",
			ErrIDMap, p, strings.TrimSpace(string(b)), strings.TrimSpace(want), s.Root)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image store: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("%w: %s holds layers unpacked without their owners (every file yours), by an earlier version: remove them (bulwark rmi each image, then bulwark image prune) and pull or load again",
			ErrIDMap, s.Root)
	}
	return s.writeAtomic(p, []byte(want))
}

// Open makes the store's directories under root (0700) if missing.
func Open(root string) (*Store, error) {
	for _, d := range []string{"", "blobs/sha256", "layers/sha256", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("image store %s: %w", root, err)
		}
	}
	if err := os.Chmod(root, 0o700); err != nil {
		return nil, fmt.Errorf("image store %s: %w", root, err)
	}
	return &Store{Root: root}, nil
}

func hexOf(digest string) (string, error) {
	if !IsDigest(digest) {
		return "", fmt.Errorf("digest %q is not sha256:<64 hex>", digest)
	}
	return strings.TrimPrefix(digest, "sha256:"), nil
}

// Lock takes the store's lock: shared for writers of new content (pulls,
// loads), exclusive for removal (rmi, prune). An exclusive holder also
// clears tmp/, where a killed pull leaves its partial work.
func (s *Store) Lock(exclusive bool) (unlock func(), err error) {
	return s.flock("lock", exclusive, true)
}

func (s *Store) flock(name string, exclusive, clearTmp bool) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.Root, name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image store lock: %w", err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	} else if clearTmp && unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		// Nobody else is writing: clear what a killed one left, then share.
		s.clearTmp()
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("image store lock: %w", err)
	}
	if exclusive && clearTmp {
		s.clearTmp()
	}
	return func() { f.Close() }, nil
}

func (s *Store) clearTmp() {
	ents, _ := os.ReadDir(filepath.Join(s.Root, "tmp"))
	for _, e := range ents {
		_ = s.removeAll(filepath.Join(s.Root, "tmp", e.Name()))
	}
	ents, _ = os.ReadDir(filepath.Join(s.Root, "layers/sha256"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			_ = s.removeAll(filepath.Join(s.Root, "layers/sha256", e.Name()))
		}
	}
}

// Layers are unpacked into, and removed out of, directories of
// layers/sha256 itself whose names start with a dot (never a digest), so
// that every rename of a layer stays in one parent directory. Moving a
// directory to another parent needs write permission on the directory
// itself (its ".." changes), and in a rootless store a layer's root may
// belong to a subordinate id the caller cannot write as itself.
const (
	stagingPrefix = ".unpack-"
	gonePrefix    = ".gone-"
)

// LayerTempDir makes a private directory to unpack a layer into, for
// CommitLayer to rename into place. Call it with the lock held.
func (s *Store) LayerTempDir() (string, error) {
	return os.MkdirTemp(filepath.Join(s.Root, "layers/sha256"), stagingPrefix)
}

// layerNames lists the committed layers (their digests' hex).
func (s *Store) layerNames() []string {
	ents, _ := os.ReadDir(filepath.Join(s.Root, "layers/sha256"))
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names
}

// TempDir makes a private directory under tmp/ (same filesystem as the
// store, so renames are atomic). Call it with the lock held.
func (s *Store) TempDir(pattern string) (string, error) {
	return os.MkdirTemp(filepath.Join(s.Root, "tmp"), pattern)
}

// BlobPath is where a blob lives, whether or not it is there.
func (s *Store) BlobPath(digest string) (string, error) {
	h, err := hexOf(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.Root, "blobs/sha256", h), nil
}

// PutBlob stores data under digest after checking that it hashes to it.
func (s *Store) PutBlob(digest string, data []byte) error {
	p, err := s.BlobPath(digest)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != digest {
		return fmt.Errorf("blob %s: content hashes to %s (digest mismatch)", digest, got)
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return s.writeAtomic(p, data)
}

// Blob reads a stored blob.
func (s *Store) Blob(digest string) ([]byte, error) {
	p, err := s.BlobPath(digest)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

func (s *Store) writeAtomic(p string, data []byte) error {
	f, err := os.CreateTemp(filepath.Join(s.Root, "tmp"), "write-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// LayerPath is the directory of the unpacked layer diffID.
func (s *Store) LayerPath(diffID string) (string, error) {
	h, err := hexOf(diffID)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.Root, "layers/sha256", h), nil
}

// HasLayer reports whether diffID is unpacked (only complete layers are
// ever under layers/).
func (s *Store) HasLayer(diffID string) bool {
	p, err := s.LayerPath(diffID)
	if err != nil {
		return false
	}
	_, err = os.Lstat(p)
	return err == nil
}

// CommitLayer moves tmpDir, a completely unpacked layer, to diffID's
// place after syncing its filesystem, and records size, the bytes its
// unpack wrote, for LayerSize. If another pull committed the same layer
// first, tmpDir is dropped.
func (s *Store) CommitLayer(diffID, tmpDir string, size int64) error {
	p, err := s.LayerPath(diffID)
	if err != nil {
		return err
	}
	fd, err := unix.Open(tmpDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = unix.Syncfs(fd)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("sync layer %s: %w", diffID, err)
	}
	// Recorded before the rename: a layer in place always has its size,
	// and a record whose layer never arrived is dropped by a prune.
	if err := s.updateSizes(func(m map[string]int64) { m[filepath.Base(p)] = size }); err != nil {
		return fmt.Errorf("commit layer %s: %w", diffID, err)
	}
	if err := os.Rename(tmpDir, p); err != nil {
		if s.HasLayer(diffID) {
			return s.removeAll(tmpDir)
		}
		return fmt.Errorf("commit layer %s: %w", diffID, err)
	}
	return syncDir(filepath.Dir(p))
}

// sizesFile records each committed layer's unpacked size (hex digest to
// bytes). Walking a layer cannot give it in a rootless store: a directory
// of mode 0700 owned by a subordinate id is closed to the caller.
const sizesFile = "layer-sizes.json"

func (s *Store) readSizes() (map[string]int64, error) {
	m := map[string]int64{}
	b, err := os.ReadFile(filepath.Join(s.Root, sizesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("image store %s: %w", filepath.Join(s.Root, sizesFile), err)
	}
	return m, nil
}

// updateSizes runs fn on the size records under the index lock (pulls
// commit layers concurrently) and replaces the file.
func (s *Store) updateSizes(fn func(map[string]int64)) error {
	unlock, err := s.flock("index.lock", true, false)
	if err != nil {
		return err
	}
	defer unlock()
	m, err := s.readSizes()
	if err != nil {
		return err
	}
	fn(m)
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return s.writeAtomic(filepath.Join(s.Root, sizesFile), b)
}

// LayerSize is the unpacked size of a layer: its record, or for a layer
// committed before records existed, the sum of the regular files a walk
// can reach.
func (s *Store) LayerSize(diffID string) int64 {
	p, err := s.LayerPath(diffID)
	if err != nil {
		return 0
	}
	if m, err := s.readSizes(); err == nil {
		if n, ok := m[filepath.Base(p)]; ok {
			return n
		}
	}
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func (s *Store) readIndex() (index, error) {
	var ix index
	b, err := os.ReadFile(filepath.Join(s.Root, "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return ix, nil
	}
	if err != nil {
		return ix, err
	}
	if err := json.Unmarshal(b, &ix); err != nil {
		return ix, fmt.Errorf("image store %s: %w", filepath.Join(s.Root, "index.json"), err)
	}
	return ix, nil
}

// update runs fn on the index under the index lock and writes the result.
func (s *Store) update(fn func(*index) error) error {
	unlock, err := s.flock("index.lock", true, false)
	if err != nil {
		return err
	}
	defer unlock()
	ix, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(&ix); err != nil {
		return err
	}
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return err
	}
	return s.writeAtomic(filepath.Join(s.Root, "index.json"), b)
}

// Images lists the stored images, newest first.
func (s *Store) Images() ([]Image, error) {
	ix, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(ix.Images, func(a, b Image) int { return b.Created.Compare(a.Created) })
	return ix.Images, nil
}

// Add records img, whose blobs and layers must already be stored, and
// moves its names off any image that held them.
func (s *Store) Add(img Image) error {
	for _, d := range img.Layers {
		if !s.HasLayer(d) {
			return fmt.Errorf("image %s: layer %s is not unpacked", img.ID, d)
		}
	}
	return s.update(func(ix *index) error {
		for i := range ix.Images {
			ix.Images[i].Names = slices.DeleteFunc(ix.Images[i].Names, func(n string) bool { return slices.Contains(img.Names, n) })
		}
		for i := range ix.Images {
			if ix.Images[i].ID == img.ID {
				old := ix.Images[i]
				img.Names = append(old.Names, img.Names...)
				slices.Sort(img.Names)
				img.Names = slices.Compact(img.Names)
				if img.Digest == "" {
					img.Digest = old.Digest
				}
				ix.Images[i] = img
				return nil
			}
		}
		ix.Images = append(ix.Images, img)
		return nil
	})
}

// Get finds an image by name, by ID ("sha256:..."), or by an ID prefix of
// at least 12 hex digits.
func (s *Store) Get(ref string) (Image, error) {
	ims, err := s.Images()
	if err != nil {
		return Image{}, err
	}
	i, err := find(ims, ref)
	if err != nil {
		return Image{}, err
	}
	return ims[i], nil
}

func find(ims []Image, ref string) (int, error) {
	for i, im := range ims {
		if slices.Contains(im.Names, ref) || im.ID == ref || im.Digest == ref {
			return i, nil
		}
	}
	if h := strings.TrimPrefix(ref, "sha256:"); len(h) >= 12 {
		found := -1
		for i, im := range ims {
			if strings.HasPrefix(strings.TrimPrefix(im.ID, "sha256:"), h) {
				if found >= 0 {
					return -1, fmt.Errorf("image %q: ID prefix is ambiguous", ref)
				}
				found = i
			}
		}
		if found >= 0 {
			return found, nil
		}
	}
	return -1, fmt.Errorf("image %q: %w", ref, ErrNotFound)
}

// Remove untags ref; the image goes when its last name does (or at once
// when ref is its ID). Layers no image uses go at the next Prune. It
// returns the removed image's ID, "" if only a name went.
func (s *Store) Remove(ref string) (removed string, err error) {
	err = s.update(func(ix *index) error {
		i, err := find(ix.Images, ref)
		if err != nil {
			return err
		}
		im := &ix.Images[i]
		if slices.Contains(im.Names, ref) && len(im.Names) > 1 {
			im.Names = slices.DeleteFunc(im.Names, func(n string) bool { return n == ref })
			return nil
		}
		removed = im.ID
		ix.Images = slices.Delete(ix.Images, i, i+1)
		return nil
	})
	return removed, err
}

// Prune removes layers and blobs no image references and no diffID in
// inUse names (layers under running containers' snapshots), and with
// dangling also the images without a name. Call it with the exclusive
// lock held.
func (s *Store) Prune(dangling bool, inUse []string) (removedImages []string, freedLayers int, err error) {
	if dangling {
		err = s.update(func(ix *index) error {
			ix.Images = slices.DeleteFunc(ix.Images, func(im Image) bool {
				if len(im.Names) == 0 {
					removedImages = append(removedImages, im.ID)
					return true
				}
				return false
			})
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	ims, err := s.Images()
	if err != nil {
		return nil, 0, err
	}
	keepLayers, keepBlobs := map[string]bool{}, map[string]bool{}
	for _, l := range inUse {
		keepLayers[strings.TrimPrefix(l, "sha256:")] = true
	}
	for _, im := range ims {
		for _, l := range im.Layers {
			keepLayers[strings.TrimPrefix(l, "sha256:")] = true
		}
		keepBlobs[strings.TrimPrefix(im.Config, "sha256:")] = true
		keepBlobs[strings.TrimPrefix(im.Manifest, "sha256:")] = true
	}
	for i, name := range s.layerNames() {
		if keepLayers[name] {
			continue
		}
		// Out of the digest's name in one rename, so no half-removed
		// layer is seen.
		gone := filepath.Join(s.Root, "layers/sha256", gonePrefix+strconv.Itoa(i)+"-"+name)
		if err := os.Rename(filepath.Join(s.Root, "layers/sha256", name), gone); err != nil {
			return removedImages, freedLayers, err
		}
		if err := s.removeAll(gone); err != nil {
			return removedImages, freedLayers, err
		}
		freedLayers++
	}
	// Size records of layers no longer there (pruned, or never committed).
	present := map[string]bool{}
	for _, name := range s.layerNames() {
		present[name] = true
	}
	if err := s.updateSizes(func(m map[string]int64) {
		for h := range m {
			if !present[h] {
				delete(m, h)
			}
		}
	}); err != nil {
		return removedImages, freedLayers, err
	}
	ents, _ := os.ReadDir(filepath.Join(s.Root, "blobs/sha256"))
	for _, e := range ents {
		if !keepBlobs[e.Name()] {
			_ = os.Remove(filepath.Join(s.Root, "blobs/sha256", e.Name()))
		}
	}
	return removedImages, freedLayers, nil
}

// CopyTo streams r into a temp file under tmp/ and returns its path (for
// archives read from stdin, which the readers need to seek).
func (s *Store) CopyTo(r io.Reader) (string, error) {
	f, err := os.CreateTemp(filepath.Join(s.Root, "tmp"), "stdin-")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
