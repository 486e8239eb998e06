// Package testrootfs builds what the integration tests run containers from:
// a minimal rootfs made of Debian's busybox-static plus the project's own
// static Go payloads (tests/payloads), and OCI bundles around it; and, for
// the tests of real programs, a Debian 12 rootfs (debian.go).
//
// The payloads are compiled once per source version into a shared cache
// directory ($TMPDIR/bulwark-payloads-<hash>), guarded by a file lock, so
// that the many test binaries `go test ./...` runs in parallel build them
// once between them.
package testrootfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// BusyboxPath is the static busybox copied into every rootfs.
var BusyboxPath = "/bin/busybox"

// AppUID and AppGID are the ids of the unprivileged "app" user in /etc/passwd.
const (
	AppUID = 1000
	AppGID = 1000
)

// PayloadBinDir is where the payloads live inside the rootfs.
const PayloadBinDir = "/usr/local/bin"

const passwd = `root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`

const group = `root:x:0:
tty:x:5:
app:x:1000:
nogroup:x:65534:
`

// Build creates a minimal rootfs at dir (created if missing): busybox with
// every applet linked in /bin, the usual top-level directories, passwd and
// group with root, app (1000) and nobody, and the payloads in
// /usr/local/bin.
func Build(dir string) error {
	payloads, err := PayloadDir()
	if err != nil {
		return err
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{"bin", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755},
		{"etc", 0o755}, {"root", 0o700}, {"home", 0o755}, {"home/app", 0o755},
		{"mnt", 0o755}, {"run", 0o755}, {"var", 0o755}, {"usr/local/bin", 0o755},
		{"tmp", os.ModeSticky | 0o777}, {"var/tmp", os.ModeSticky | 0o777},
	} {
		p := filepath.Join(dir, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		// Chmod after MkdirAll: the umask must not weaken tmp, and only
		// Chmod sets the sticky bit (os.ModeSticky, not the raw 0o1000).
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(dir, "home/app"), AppUID, AppGID); err != nil {
			return err
		}
	}

	if err := copyFile(BusyboxPath, filepath.Join(dir, "bin/busybox"), 0o755); err != nil {
		return fmt.Errorf("testrootfs: busybox (is busybox-static installed?): %w", err)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("testrootfs: %s --list: %w", BusyboxPath, err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		link := filepath.Join(dir, "bin", applet)
		if err := os.Symlink("busybox", link); err != nil && !os.IsExist(err) {
			return err
		}
	}

	for name, content := range map[string]string{
		"etc/passwd": passwd, "etc/group": group,
		"etc/hostname": "bulwark\n", "etc/hosts": "127.0.0.1 localhost\n", "etc/resolv.conf": "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}

	ents, err := os.ReadDir(payloads)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == doneMarker {
			continue
		}
		// Copies, not hard links: a test whose defense fails must not be
		// able to corrupt the cache other tests execute from.
		if err := copyFile(filepath.Join(payloads, e.Name()), filepath.Join(dir, PayloadBinDir, e.Name()), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// Payloads lists the payload names Build installs.
func Payloads() ([]string, error) {
	src, err := payloadSource()
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && e.Name() != "internal" {
			if _, err := os.Stat(filepath.Join(src, e.Name(), "main.go")); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	return names, nil
}

const doneMarker = ".complete"

var (
	payloadOnce sync.Once
	payloadDir  string
	payloadErr  error
)

// PayloadDir returns the directory holding the compiled payloads, building
// them if no process has yet for this version of their source.
func PayloadDir() (string, error) {
	payloadOnce.Do(func() { payloadDir, payloadErr = buildPayloads() })
	return payloadDir, payloadErr
}

// payloadCacheDir is the shared cache directory for this version of the
// payloads' source.
func payloadCacheDir() (string, error) {
	src, err := payloadSource()
	if err != nil {
		return "", err
	}
	sum, err := sourceHash(filepath.Dir(filepath.Dir(src)), src)
	if err != nil {
		return "", err
	}
	return filepath.Join(os.TempDir(), "bulwark-payloads-"+sum), nil
}

func buildPayloads() (string, error) {
	src, err := payloadSource()
	if err != nil {
		return "", err
	}
	modRoot := filepath.Dir(filepath.Dir(src))
	dir, err := payloadCacheDir()
	if err != nil {
		return "", err
	}
	if ok, err := cached(dir); ok || err != nil {
		return dir, err
	}

	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", err
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	// Another process may have finished while we waited for the lock.
	if ok, err := cached(dir); ok || err != nil {
		return dir, err
	}

	tmp, err := os.MkdirTemp(os.TempDir(), "bulwark-payloads-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(goTool(), "build", "-trimpath", "-ldflags=-s -w", "-o", tmp+"/", "./tests/payloads/...")
	cmd.Dir = modRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testrootfs: building payloads: %w\n%s", err, stderr.String())
	}
	if err := os.WriteFile(filepath.Join(tmp, doneMarker), nil, 0o644); err != nil {
		return "", err
	}
	// A stale directory without the marker is a build that died midway.
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// cached reports whether dir holds a finished build of the payloads. TMPDIR
// is shared with every user of the host and the name is computable from
// the public source, so a directory there counts only when this user made
// it and no one else can write it: another user's would have root run its
// binaries, on the host and in the escape suite's containers. Such a
// directory is refused, not removed: it is evidence.
func cached(dir string) (bool, error) {
	var st unix.Stat_t
	err := unix.Lstat(dir, &st)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("testrootfs: payload cache %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != uint32(os.Geteuid()) || st.Mode&0o022 != 0 {
		return false, fmt.Errorf("testrootfs: payload cache %s is not a directory of uid %d that only it can write (owner %d, mode %#o): another user may have planted it; remove it",
			dir, os.Geteuid(), st.Uid, st.Mode&0o7777)
	}
	_, err = os.Lstat(filepath.Join(dir, doneMarker))
	return err == nil, nil
}

// BuildBulwark builds the runtime into out with scripts/build.sh, so the
// tests exercise the binary as it ships (statically linked).
func BuildBulwark(out string) error {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return fmt.Errorf("testrootfs: cannot locate the source tree")
	}
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "build.sh")
	cmd := exec.Command("bash", script, out)
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":"+filepath.Dir(goTool()))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/build.sh %s: %w\n%s", out, err, stderr.String())
	}
	return nil
}

func payloadSource() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("testrootfs: cannot locate the source tree")
	}
	src := filepath.Join(filepath.Dir(file), "..", "..", "tests", "payloads")
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("testrootfs: payload sources: %w", err)
	}
	return filepath.Clean(src), nil
}

// sourceHash covers the payload sources and go.mod/go.sum: a dependency
// bump changes the binaries as much as a source edit does.
func sourceHash(modRoot, src string) (string, error) {
	var files []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	files = append(files, filepath.Join(modRoot, "go.mod"), filepath.Join(modRoot, "go.sum"))
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version())
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			return "", err
		}
		rel, _ := filepath.Rel(modRoot, f)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// goTool finds the go command: PATH first, then where this project's
// machines install Go (tests may run with a PATH that lacks it).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		return "/usr/local/go/bin/go"
	}
	return "go"
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	os.Remove(dst)
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}
