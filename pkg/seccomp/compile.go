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
)

// Compile returns the BPF program for s (as ExportBPF), or nil for a profile
// that installs no filter. With a cacheDir it keeps compiled programs there,
// keyed by the profile, the libseccomp version and API level and the
// architecture: generating a Docker-sized profile costs libseccomp about
// 10 ms of CPU, paid again by every container that uses the same profile.
//
// The cache lives in the runtime's root-only state directory. A cached entry
// carries the SHA-256 of its program and is used only if it matches, so a
// truncated or damaged file is recompiled, never installed.
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
	if cacheDir != "" {
		key, err := cacheKey(s)
		if err != nil {
			return nil, err
		}
		path = filepath.Join(cacheDir, key+".bpf")
		if prog, ok := readCached(path); ok {
			return prog, nil
		}
	}
	prog, err := ExportBPF(s)
	if err != nil {
		return nil, err
	}
	if path != "" {
		// A cache that cannot be written costs speed, not correctness.
		_ = writeCached(cacheDir, path, prog)
	}
	return prog, nil
}

func cacheKey(s *specs.LinuxSeccomp) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	api, _ := libseccomp.GetAPI()
	h := sha256.New()
	fmt.Fprintf(h, "bulwark-seccomp-v1\x00%s\x00%d\x00%s\x00", Version(), api, runtime.GOARCH)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func readCached(path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < sha256.Size {
		return nil, false
	}
	sum, prog := b[:sha256.Size], b[sha256.Size:]
	got := sha256.Sum256(prog)
	if !bytes.Equal(sum, got[:]) || len(prog) == 0 || len(prog)%8 != 0 {
		return nil, false
	}
	return prog, true
}

func writeCached(dir, path string, prog []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	sum := sha256.Sum256(prog)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(sum[:], prog...)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
