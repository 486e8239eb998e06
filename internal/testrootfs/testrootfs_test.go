package testrootfs

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestBuildRootfs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := Build(dir); err != nil {
		t.Fatal(err)
	}

	// The shell must run from the rootfs itself: a static busybox needs
	// nothing from the host.
	out, err := exec.Command(filepath.Join(dir, "bin/sh"), "-c", "echo hello from $0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello from") {
		t.Fatalf("rootfs sh: %v: %q", err, out)
	}
	for _, applet := range []string{"sh", "ls", "cat", "sleep", "id", "mount", "ps", "awk", "sed", "dd", "[", "hostname"} {
		target, err := os.Readlink(filepath.Join(dir, "bin", applet))
		if err != nil || target != "busybox" {
			t.Errorf("bin/%s: link %q, %v", applet, target, err)
		}
	}
	for _, d := range []string{"proc", "sys", "dev", "tmp", "etc", "root", "home", "mnt", "run", "var"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "tmp")); fi == nil || fi.Mode().Perm() != 0o777 || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("tmp mode: %v", fi.Mode())
	}
	pw, err := os.ReadFile(filepath.Join(dir, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"root:x:0:0:", "app:x:1000:1000:", "nobody:x:65534:65534:"} {
		if !strings.Contains(string(pw), want) {
			t.Errorf("passwd lacks %q", want)
		}
	}

	names, err := Payloads()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"probe", "syscall", "exeattack", "fdleak", "spin", "forkbomb", "membomb", "diskfill", "httpd", "mlock"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("payload %s missing from %v", want, names)
		}
		if _, err := os.Stat(filepath.Join(dir, PayloadBinDir, want)); err != nil {
			t.Errorf("payload %s not installed: %v", want, err)
		}
	}
}

func TestPayloadsRunOnHost(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := Build(dir); err != nil {
		t.Fatal(err)
	}
	bin := func(n string) string { return filepath.Join(dir, PayloadBinDir, n) }

	// Static: no interpreter, so they run in a rootfs without a libc.
	out, err := exec.Command("file", bin("probe")).Output()
	if err == nil && !strings.Contains(string(out), "statically linked") {
		t.Errorf("probe is not static: %s", out)
	}

	mnt := t.TempDir()
	out, err = exec.Command(bin("probe"), "-json", "-mount-target", mnt).Output()
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		UID        int                         `json:"uid"`
		Caps       map[string]json.RawMessage  `json:"caps"`
		MountTmpfs string                      `json:"mount_tmpfs"`
		Landlock   struct{ Restricted string } `json:"landlock"`
		FDs        []struct{ FD int }          `json:"fds"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("probe -json: %v\n%s", err, out)
	}
	if p.UID != os.Getuid() {
		t.Errorf("probe uid %d, we are %d", p.UID, os.Getuid())
	}
	for _, set := range []string{"Inh", "Prm", "Eff", "Bnd", "Amb"} {
		if _, ok := p.Caps[set]; !ok {
			t.Errorf("probe lacks caps %s", set)
		}
	}
	if p.MountTmpfs == "" || p.Landlock.Restricted != "unknown" || len(p.FDs) < 3 {
		t.Errorf("probe: mount %q landlock %q fds %d", p.MountTmpfs, p.Landlock.Restricted, len(p.FDs))
	}
	// The probe must not leave its test mount behind.
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), " "+mnt+" ") {
		t.Errorf("probe left a mount on %s", mnt)
	}

	out, err = exec.Command(bin("syscall"), "getppid").Output()
	if err != nil || strings.TrimSpace(string(out)) != "OK" {
		t.Errorf("syscall getppid: %v %q", err, out)
	}
	// A refused call still exits 0 and names the errno.
	out, err = exec.Command(bin("syscall"), "pivot_root").Output()
	if got := strings.TrimSpace(string(out)); err != nil || (got != "ENOENT" && got != "EPERM") {
		t.Errorf("syscall pivot_root: %v %q", err, out)
	}
	var ee *exec.ExitError
	if err := exec.Command(bin("syscall"), "no_such_call").Run(); !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("unknown call: want exit 2, got %v", err)
	}

	out, err = exec.Command(bin("forkbomb"), "5").Output()
	var fb struct{ Forked, Reaped int }
	if err != nil || json.Unmarshal(out, &fb) != nil || fb.Forked != 5 || fb.Reaped != 5 {
		t.Errorf("forkbomb 5: %v %s", err, out)
	}
}

func TestPayloadDirSharedUnderConcurrency(t *testing.T) {
	d1, err := PayloadDir()
	if err != nil {
		t.Fatal(err)
	}
	// A second builder in this process goes through the same flock path a
	// parallel test binary would: it must find the finished cache.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	dirs := make([]string, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			dirs[i], errs[i] = buildPayloads()
		}(i)
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || dirs[i] != d1 {
			t.Errorf("builder %d: %q, %v (want %q)", i, dirs[i], errs[i], d1)
		}
	}
	if _, err := os.Stat(filepath.Join(d1, doneMarker)); err != nil {
		t.Errorf("cache not marked complete: %v", err)
	}
}

func TestBundle(t *testing.T) {
	b := Bundle(t, func(s *specs.Spec) {
		s.Hostname = "mutated"
		s.Process.Args = []string{"/usr/local/bin/probe", "-json"}
	})
	raw, err := os.ReadFile(filepath.Join(b, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Hostname != "mutated" || s.Process.Args[0] != "/usr/local/bin/probe" || s.Process.Terminal {
		t.Errorf("config not as mutated: hostname %q args %v terminal %v", s.Hostname, s.Process.Args, s.Process.Terminal)
	}
	if s.Root.Path != "rootfs" || s.Version != specs.Version {
		t.Errorf("root %q version %q", s.Root.Path, s.Version)
	}
	if _, err := os.Stat(filepath.Join(b, s.Root.Path, "bin/busybox")); err != nil {
		t.Error(err)
	}
	fi, err := os.Stat(b)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bundle dir mode %v, %v", fi.Mode(), err)
	}
}

// TestFdleakSeesHostDirectory checks the CVE-2024-21626 detector against
// a real leak: a chrooted process that inherits an fd to a directory
// outside its root must report it, and only it.
func TestFdleakSeesHostDirectory(t *testing.T) {
	RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := Build(dir); err != nil {
		t.Fatal(err)
	}
	outside, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()

	run := func(extra []*os.File) (escapes int, fd3 *bool) {
		// A private mount namespace, so the /proc fdleak reads is ours.
		cmd := exec.Command("/bin/sh", "-c", "mount -t proc proc /proc && exec "+PayloadBinDir+"/fdleak")
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir, Unshareflags: syscall.CLONE_NEWNS}
		cmd.Dir = "/"
		cmd.ExtraFiles = extra
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("fdleak: %v", err)
		}
		var r struct {
			Escapes int
			FDs     []struct {
				FD      int
				Outside bool
			}
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, f := range r.FDs {
			if f.FD == 3 {
				v := f.Outside
				fd3 = &v
			}
		}
		return r.Escapes, fd3
	}

	if n, _ := run(nil); n != 0 {
		t.Errorf("no leak: escapes = %d, want 0", n)
	}
	n, fd3 := run([]*os.File{outside})
	if fd3 == nil {
		t.Fatalf("fd 3 not reported (escapes = %d)", n)
	}
	if n != 1 || !*fd3 {
		t.Errorf("leaked host dir: escapes = %d, fd 3 outside = %v; want 1, true", n, *fd3)
	}
}

func TestRequireHelpers(t *testing.T) {
	// The helpers either return or skip; a host where these all pass
	// must also show the feature directly.
	t.Run("landlock", func(t *testing.T) {
		abi := RequireLandlock(t, 1)
		if abi < 1 {
			t.Errorf("abi %d", abi)
		}
	})
	t.Run("cgroup-v1-memory", func(t *testing.T) {
		RequireCgroupV1Controller(t, "memory")
		if _, err := os.Stat("/proc/self/cgroup"); err != nil {
			t.Error(err)
		}
	})
	t.Run("cgroup-v2-bogus", func(t *testing.T) {
		RequireCgroupV2Controller(t, "no-such-controller")
		t.Error("a controller that does not exist was reported available")
	})
	t.Run("binary-bogus", func(t *testing.T) {
		RequireBinary(t, "bulwark-no-such-binary")
		t.Error("a missing binary was reported present")
	})
}

func TestSuiteSourcesKeepOnlyTheSuite(t *testing.T) {
	tests := []struct {
		name         string
		deb822, list string
		want         string
	}{
		{name: "deb822 with updates, security and a third-party suite",
			deb822: "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n" +
				"Types: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\nComponents: main\n",
			want: "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"},
		{name: "deb-src and disabled stanzas are left out",
			deb822: "Types: deb-src\nURIs: http://m/debian\nSuites: bookworm\nComponents: main\n\nEnabled: no\nTypes: deb\nURIs: http://m/debian\nSuites: bookworm\nComponents: main\n"},
		{name: "one-line sources with options",
			list: "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m/debian-security bookworm-security main contrib\ndeb http://vendor/apt cloud-sdk-bookworm main\n",
			want: "Types: deb\nURIs: http://m/debian-security\nSuites: bookworm-security\nComponents: main contrib\n\n"},
		{name: "another release only", list: "deb http://m/debian trixie main\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(suiteSources("bookworm", [][]byte{[]byte(tc.deb822)}, [][]byte{[]byte(tc.list)}))
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// Another local user can create names in a shared TMPDIR before root's tests
// run, and the payloads' cache name is computable from the public source:
// a directory planted there with the done marker must not be taken for the
// cache, or root runs the planter's binaries (on the host in these tests,
// in every container of the escape suite, whose verdicts they would forge).
// A lock file replaced by a symlink must not make root create its target.
func TestPayloadCachePlantedByAnotherUserIsRefused(t *testing.T) {
	RequireRoot(t)
	for _, tc := range []struct {
		name      string
		plantDir  bool
		plantLock bool
	}{
		{"cache directory with the done marker", true, false},
		{"lock file as a symlink", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			if err := os.Chmod(tmp, 0o1777); err != nil {
				t.Fatal(err)
			}
			t.Setenv("TMPDIR", tmp)
			dir, err := payloadCacheDir()
			if err != nil {
				t.Fatal(err)
			}
			var planted []string
			if tc.plantDir {
				bin := filepath.Join(dir, "syscall")
				planted = append(planted, dir, bin, filepath.Join(dir, doneMarker))
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for _, f := range planted[1:] {
					if err := os.WriteFile(f, []byte("#!/bin/sh\necho planted\n"), 0o755); err != nil {
						t.Fatal(err)
					}
				}
			}
			victim := filepath.Join(tmp, "created-by-root")
			if tc.plantLock {
				planted = append(planted, dir+".lock")
				if err := os.Symlink(victim, dir+".lock"); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range planted {
				if err := os.Lchown(p, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			}

			got, err := buildPayloads()
			if err == nil {
				t.Fatalf("the planted cache was used: payloads from %s", got)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("the refusal does not name the cache: %v", err)
			}
			t.Logf("refused: %v", err)
			if _, err := os.Lstat(victim); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the lock's symlink was followed: %s exists (%v)", victim, err)
			}
		})
	}
}
