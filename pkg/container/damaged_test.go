package container

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A state.json that cannot be read keeps a plain delete out, names the
// file, and leaves delete --force to remove the state directory, saying
// what it could not know.
func TestDeleteOfADamagedState(t *testing.T) {
	for _, tc := range []struct{ name, state string }{
		{"empty", ""},
		{"cut", `{"id":"c1","bundle":"/b","pid":12`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runtime{Root: t.TempDir()}
			dir := filepath.Join(r.Root, "c1")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(tc.state), 0o600); err != nil {
				t.Fatal(err)
			}
			err := r.Delete("c1", false)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), filepath.Join(dir, "state.json")) {
				t.Errorf("Delete: %v, want ErrDamaged naming the file", err)
			}
			if _, serr := os.Stat(dir); serr != nil {
				t.Errorf("a plain delete removed the state directory: %v", serr)
			}
			err = r.Delete("c1", true)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "are left") {
				t.Errorf("Delete --force: %v, want ErrDamaged saying what may be left", err)
			}
			if _, serr := os.Stat(dir); !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("Delete --force left the state directory: %v", serr)
			}
		})
	}
}
