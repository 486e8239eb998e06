package testrootfs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The real-software tests need what a person's image has: a dynamic loader,
// glibc, interpreters and packaged daemons. Static payloads never call
// access(2) from ld.so or read /etc/passwd through NSS, so a profile that
// only ever ran them could break every real program and no test would see.
//
// The Debian rootfs is built once per package list, suite and apt sources
// by mmdebstrap, under DebianCacheDir() (outside any checkout: CI clones
// afresh and the build takes minutes). The essential variant has no apt
// inside: the rootfs only runs programs, it never installs any.

// DebianSuite is the release the rootfs is built from (Debian 12): the
// tests name its package versions' behaviour (postgresql 15's paths).
const DebianSuite = "bookworm"

// debianPackages are installed on top of the Essential set, with their
// dependencies but without recommends.
var debianPackages = []string{
	"python3",
	"nginx",
	"postgresql",
	"redis-server", "redis-tools",
	"git",
	"gcc", "libc6-dev",
	"procps", "iproute2",
}

// debianVersion changes whenever the way the rootfs is built changes in a
// way the arguments below do not show.
const debianVersion = "1"

// debianArgs are mmdebstrap's options besides suite, target and sources.
func debianArgs() []string {
	return []string{
		"--variant=essential",
		"--include=" + strings.Join(debianPackages, ","),
		// Documentation and translations are a third of a Debian install
		// and no test reads them.
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-include=/usr/share/doc/*/copyright",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--dpkgopt=path-exclude=/usr/share/info/*",
		// The package's own cluster (40 MB) is of no use: a test makes its
		// own with initdb where it can write.
		`--customize-hook=chroot "$1" pg_dropcluster --stop 15 main || true`,
	}
}

// DebianCacheDir is where built rootfs are kept: $BULWARK_TEST_CACHE or
// /var/cache/bulwark-test.
func DebianCacheDir() string {
	if d := os.Getenv("BULWARK_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/bulwark-test"
}

// ErrDebianUnavailable wraps every reason the Debian rootfs cannot be had
// on this machine (no mmdebstrap, no apt sources for the suite, no network
// to them); tests skip on it.
var ErrDebianUnavailable = errors.New("Debian test rootfs unavailable")

var (
	debianOnce sync.Once
	debianDir  string
	debianErr  error
)

// Debian returns the cached Debian rootfs, building it first when no
// process has for this package list and these sources. The directory is
// shared: never write into it (RequireDebian hands tests a read-only view).
func Debian() (string, error) {
	debianOnce.Do(func() { debianDir, debianErr = buildDebian(os.Stderr) })
	return debianDir, debianErr
}

// BuildDebian is Debian for commands (scripts/test.sh builds it before the
// tests so that a cold cache is not built inside a test's timeout); the
// build's progress goes to log.
func BuildDebian(log *os.File) (string, error) { return buildDebian(log) }

func buildDebian(log *os.File) (string, error) {
	mm, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return "", fmt.Errorf("%w: mmdebstrap is not installed (scripts/setup.sh installs it)", ErrDebianUnavailable)
	}
	sources, err := aptSources(DebianSuite)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", debianVersion, DebianSuite, strings.Join(debianArgs(), "\n"))
	h.Write(sources)
	sum := hex.EncodeToString(h.Sum(nil))[:16]

	cache := DebianCacheDir()
	dir := filepath.Join(cache, "debian-"+sum)
	if complete(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("%w: cache %s: %v", ErrDebianUnavailable, cache, err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrDebianUnavailable, err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", err
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	if complete(dir) {
		return dir, nil
	}
	// Under the lock, any build directory of this hash is a dead
	// builder's, and so is a final directory without the marker.
	stale, _ := filepath.Glob(filepath.Join(cache, ".build-"+sum+"-*"))
	for _, s := range append(stale, dir) {
		if err := os.RemoveAll(s); err != nil {
			return "", fmt.Errorf("removing a stale build %s: %w", s, err)
		}
	}

	tmp, err := os.MkdirTemp(cache, ".build-"+sum+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	srcFile := filepath.Join(tmp, "debian.sources")
	if err := os.WriteFile(srcFile, sources, 0o644); err != nil {
		return "", err
	}
	root := filepath.Join(tmp, "rootfs")
	args := append(debianArgs(), DebianSuite, root, srcFile)
	fmt.Fprintf(log, "testrootfs: building the Debian %s test rootfs in %s (minutes, once per package list)\n", DebianSuite, dir)
	start := time.Now()
	cmd := exec.Command(mm, args...)
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: mmdebstrap %s: %v\n%s", ErrDebianUnavailable, strings.Join(args, " "), err, out.String())
	}
	if err := os.WriteFile(filepath.Join(root, doneMarker), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(root, dir); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "testrootfs: built %s in %s\n", dir, time.Since(start).Round(time.Second))
	return dir, nil
}

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, doneMarker))
	return err == nil
}

// aptSources returns the machine's configured apt sources for suite and
// its -updates and -security suites, as one deb822 file. Other suites and
// third-party repositories (whose keys the build may not find) are left
// out: the rootfs is plain Debian.
func aptSources(suite string) ([]byte, error) {
	read := func(paths []string) [][]byte {
		var out [][]byte
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				out = append(out, b)
			}
		}
		return out
	}
	deb822Files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	lists = append([]string{"/etc/apt/sources.list"}, lists...)
	out := suiteSources(suite, read(deb822Files), read(lists))
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no apt source in /etc/apt/sources.list{,.d} serves %s", ErrDebianUnavailable, suite)
	}
	return out, nil
}

// suiteSources keeps, from deb822 (.sources) and one-line (.list) files,
// the binary sources of suite, suite-updates and suite-security, written
// out as deb822.
func suiteSources(suite string, deb822Files, lists [][]byte) []byte {
	want := []string{suite, suite + "-updates", suite + "-security"}
	var out bytes.Buffer
	for _, b := range deb822Files {
		for _, stanza := range strings.Split(string(b), "\n\n") {
			fields := deb822(stanza)
			if !slices.Contains(strings.Fields(fields["types"]), "deb") || fields["enabled"] == "no" {
				continue
			}
			var suites []string
			for _, s := range strings.Fields(fields["suites"]) {
				if slices.Contains(want, s) {
					suites = append(suites, s)
				}
			}
			if len(suites) == 0 || fields["uris"] == "" {
				continue
			}
			fmt.Fprintf(&out, "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\n", fields["uris"], strings.Join(suites, " "), fields["components"])
			if k := fields["signed-by"]; k != "" && !strings.Contains(k, "\n") {
				fmt.Fprintf(&out, "Signed-By: %s\n", k)
			}
			out.WriteString("\n")
		}
	}
	for _, b := range lists {
		for _, l := range strings.Split(string(b), "\n") {
			w := strings.Fields(l)
			// Options in brackets ([arch=amd64 signed-by=...]) go: the
			// rootfs is of the host's architecture and keys are found.
			if len(w) > 1 && w[0] == "deb" && strings.HasPrefix(w[1], "[") {
				end := slices.IndexFunc(w[1:], func(s string) bool { return strings.HasSuffix(s, "]") })
				if end < 0 {
					continue
				}
				w = append(w[:1], w[end+2:]...)
			}
			if len(w) < 4 || w[0] != "deb" || !slices.Contains(want, w[2]) {
				continue
			}
			fmt.Fprintf(&out, "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\n\n", w[1], w[2], strings.Join(w[3:], " "))
		}
	}
	return out.Bytes()
}

// deb822 parses one stanza into lower-cased keys; continuation lines are
// kept (Signed-By may embed a key).
func deb822(stanza string) map[string]string {
	m := map[string]string{}
	var key string
	s := bufio.NewScanner(strings.NewReader(stanza))
	for s.Scan() {
		l := s.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && key != "" {
			m[key] += "\n" + l
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		key = strings.ToLower(strings.TrimSpace(k))
		m[key] = strings.TrimSpace(v)
	}
	return m
}

// tail keeps the last 4 KiB written to it: enough of mmdebstrap's log to
// say why a build failed.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }

// RequireDebian returns a read-only view of the Debian rootfs for this
// test (a read-only bind mount of the shared cache, gone when the test
// ends), so that no container, whatever its profile and whether or not a
// defense fails, can change what other tests and later runs execute. It
// skips, saying why, where the rootfs cannot be built. A profile with a
// writable rootfs (dev) needs RequireDebianWritable.
func RequireDebian(t testing.TB) string {
	t.Helper()
	lower := requireDebian(t)
	root := filepath.Join(traversableTempDir(t), "rootfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(lower, root, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s: %v", lower, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", root, err)
		}
	})
	if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", root, err)
	}
	return root
}

// RequireDebianWritable returns a private copy of the Debian rootfs (about
// 7 s to make). Not an overlay: overlayfs cannot itself be idmapped, and
// the container's root would see every file owned by nobody.
func RequireDebianWritable(t testing.TB) string {
	t.Helper()
	lower := requireDebian(t)
	root := filepath.Join(traversableTempDir(t), "rootfs")
	if out, err := exec.Command("cp", "-a", lower, root).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v: %s", lower, err, out)
	}
	os.Remove(filepath.Join(root, doneMarker))
	return root
}

func requireDebian(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	dir, err := Debian()
	if errors.Is(err, ErrDebianUnavailable) {
		t.Skipf("%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// traversableTempDir is t.TempDir made reachable by the container's root,
// an unprivileged host id (t.TempDir and its parent are 0700).
func traversableTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
