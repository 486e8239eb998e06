package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func digest(c string) string { return "sha256:" + strings.Repeat(c, 64) }

func layer(t *testing.T, s *Store, d string) {
	t.Helper()
	tmp, err := s.TempDir("layer-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitLayer(d, tmp, 1); err != nil {
		t.Fatal(err)
	}
}

func TestStoreNamesAndRemoval(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(s.Root); fi.Mode().Perm() != 0o700 {
		t.Errorf("store root mode %o, want 0700", fi.Mode().Perm())
	}
	if err := s.Add(Image{ID: digest("a"), Layers: []string{digest("1")}}); err == nil {
		t.Fatal("Add accepted an image whose layer is not unpacked")
	}
	layer(t, s, digest("1"))
	layer(t, s, digest("2"))
	if err := s.Add(Image{ID: digest("a"), Names: []string{"x:1", "x:latest"}, Layers: []string{digest("1")}}); err != nil {
		t.Fatal(err)
	}
	// A new image takes the name over.
	if err := s.Add(Image{ID: digest("b"), Names: []string{"x:latest"}, Layers: []string{digest("1"), digest("2")}}); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{"x:latest": digest("b"), "x:1": digest("a"), strings.Repeat("a", 12): digest("a"), digest("b"): digest("b")} {
		if im, err := s.Get(ref); err != nil || im.ID != want {
			t.Errorf("Get(%q) = %s, %v; want %s", ref, im.ID, err, want)
		}
	}
	if _, err := s.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope): %v", err)
	}
	if gone, err := s.Remove("x:1"); err != nil || gone != digest("a") {
		t.Fatalf("Remove(x:1) = %q, %v", gone, err)
	}
	if _, freed, err := s.Prune(false, nil); err != nil || freed != 0 {
		t.Fatalf("prune: freed %d, %v; both layers are still used by b", freed, err)
	}
	if err := s.PutBlob(digest("c"), []byte("not c")); err == nil {
		t.Error("PutBlob stored content under a digest it does not hash to")
	}
}

func TestLockClearsLeftovers(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	// What a pull killed mid-layer leaves behind.
	half, _ := s.TempDir("layer-")
	_ = os.WriteFile(filepath.Join(half, "half"), nil, 0o644)
	unlock, err := s.Lock(false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Errorf("first writer did not clear a killed pull's temp dir: %v", err)
	}
	// A second writer must not clear the first one's work.
	mine, _ := s.TempDir("layer-")
	unlock2, err := s.Lock(false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a concurrent writer cleared live work: %v", err)
	}
	unlock2()
	unlock()
}

func TestCheckIDMap(t *testing.T) {
	const mapA, mapB = "uid 0 1000 1\nuid 1 100000 65536\n", "uid 0 1000 1\nuid 1 200000 65536\n"
	for _, c := range []struct {
		name      string
		recorded  string // "" for none
		hasLayers bool
		want      string
		wantErr   bool
	}{
		{"a new store records the mapping", "", false, mapA, false},
		{"the same mapping", mapA, true, mapA, false},
		{"another mapping is refused", mapB, true, mapA, true},
		{"another mapping over no layer is replaced", mapB, false, mapA, false},
		{"layers without a record predate owners", "", true, mapA, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "images"))
			if err != nil {
				t.Fatal(err)
			}
			if c.recorded != "" {
				if err := os.WriteFile(filepath.Join(s.Root, idMapFile), []byte(c.recorded), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if c.hasLayers {
				layer(t, s, digest("1"))
			}
			err = s.CheckIDMap(c.want)
			if (err != nil) != c.wantErr || (err != nil && !errors.Is(err, ErrIDMap)) {
				t.Fatalf("CheckIDMap = %v, want error %v", err, c.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), s.Root) {
					t.Errorf("error does not name the store: %v", err)
				}
				return
			}
			if b, _ := os.ReadFile(filepath.Join(s.Root, idMapFile)); string(b) != c.want {
				t.Errorf("recorded %q, want %q", b, c.want)
			}
		})
	}
}

// A layer's size comes from its record, which a walk cannot replace in a
// rootless store (directories closed to the caller); a layer committed
// before records existed falls back to the walk; a prune drops the record.
func TestLayerSizeRecord(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	recorded, old := digest("1"), digest("2")
	tmp, err := s.LayerTempDir()
	if err != nil {
		t.Fatal(err)
	}
	// 3 bytes on disk, 1234 recorded: the record wins.
	if err := os.WriteFile(filepath.Join(tmp, "f"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitLayer(recorded, tmp, 1234); err != nil {
		t.Fatal(err)
	}
	// Committed by an earlier version: in place, no record.
	p, _ := s.LayerPath(old)
	if err := os.MkdirAll(filepath.Join(p, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "d", "g"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		diffID string
		want   int64
	}{{recorded, 1234}, {old, 5}, {digest("3"), 0}} {
		if got := s.LayerSize(c.diffID); got != c.want {
			t.Errorf("LayerSize(%s) = %d, want %d", c.diffID[:12], got, c.want)
		}
	}
	if _, freed, err := s.Prune(false, nil); err != nil || freed != 2 {
		t.Fatalf("prune: freed %d, %v; want both layers", freed, err)
	}
	m, err := s.readSizes()
	if err != nil || len(m) != 0 {
		t.Errorf("size records after prune: %v, %v; want none", m, err)
	}
	// Committed again (a pull after the prune), it is recorded anew.
	tmp, _ = s.LayerTempDir()
	if err := s.CommitLayer(recorded, tmp, 7); err != nil {
		t.Fatal(err)
	}
	if got := s.LayerSize(recorded); got != 7 {
		t.Errorf("LayerSize after recommit = %d, want 7", got)
	}
}
