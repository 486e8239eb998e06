package seccomp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"

	"github.com/bulwark-sec/bulwark/pkg/safefile"
)

// Compile returns the BPF program for s (as ExportBPF), or nil for a profile
// that installs no filter. With a cacheDir it keeps compiled programs there,
// keyed by the profile, the libseccomp version and API level and the
// architecture: generating a Docker-sized profile costs libseccomp about
// 10 ms of CPU, paid again by every container that uses the same profile.
//
// The cache lives in the runtime's root-only state directory, and a
// directory anyone but its owner (root, or the user running bulwark) may
// write is refused: a planted allow-all program would otherwise be loaded
// into the next container. Entries are opened without following symlinks
// and only if their owner and mode are as safe; each carries the key it was
// compiled for (the hash of the whole profile and of the libseccomp and
// architecture it was compiled with) and the SHA-256 of its program, and is
// used only if both match, so an entry copied from another profile, or a
// truncated or damaged file, is recompiled, never installed.
func Compile(s *specs.LinuxSeccomp, cacheDir string) ([]byte, error) {
	if s == nil {
		return nil, errors.New("seccomp: Compile called with a nil profile")
	}
	if err := Validate(s); err != nil {
		return nil, err
	}
	if disabled(s) {
		return nil, nil
	}
	var path string
	var key []byte
	if cacheDir != "" {
		var err error
		key, err = cacheKey(s)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(cacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("seccomp cache: %w", err)
		}
		if err := safefile.CheckDir(cacheDir); err != nil {
			return nil, fmt.Errorf("seccomp cache: %w", err)
		}
		path = filepath.Join(cacheDir, hex.EncodeToString(key)+".bpf")
		if prog, ok := readCached(path, key); ok {
			return prog, nil
		}
	}
	prog, err := ExportBPF(s)
	if err != nil {
		return nil, err
	}
	if path != "" {
		// A cache that cannot be written costs speed, not correctness.
		_ = writeCached(cacheDir, path, key, prog)
	}
	return prog, nil
}

// cacheMagic starts every cache entry; a new format gets a new magic, so
// entries of an older Bulwark are recompiled.
const cacheMagic = "bulwark-seccomp-cache-v3\n"

func cacheKey(s *specs.LinuxSeccomp) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	api, _ := libseccomp.GetAPI()
	h := sha256.New()
	fmt.Fprintf(h, "bulwark-seccomp-v2\x00%s\x00%d\x00%s\x00", Version(), api, runtime.GOARCH)
	h.Write(b)
	return h.Sum(nil), nil
}

// readCached returns the program of the entry at path if the entry is safe
// to trust (safefile.ReadFile) and was compiled for key.
func readCached(path string, key []byte) ([]byte, bool) {
	b, err := safefile.ReadFile(path)
	if err != nil {
		return nil, false
	}
	rest, ok := bytes.CutPrefix(b, []byte(cacheMagic))
	if !ok || len(rest) < 2*sha256.Size {
		return nil, false
	}
	entryKey, sum, prog := rest[:sha256.Size], rest[sha256.Size:2*sha256.Size], rest[2*sha256.Size:]
	got := sha256.Sum256(prog)
	if !bytes.Equal(entryKey, key) || !bytes.Equal(sum, got[:]) || len(prog) == 0 || len(prog)%8 != 0 {
		return nil, false
	}
	return prog, true
}

func writeCached(dir, path string, key, prog []byte) error {
	sum := sha256.Sum256(prog)
	// CreateTemp's O_EXCL never follows a symlink at the name.
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	entry := append(append(append([]byte(cacheMagic), key...), sum[:]...), prog...)
	if _, err := tmp.Write(entry); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
