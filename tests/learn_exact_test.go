package tests

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/learntest"
	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
)

// rawSyscallELF is a static x86-64 program that makes exactly these
// system calls and nothing else (no libc, no runtime): getppid, getuid,
// write(1, "ok\n", 3), exit_group(0). Built here, byte by byte, so that
// what the kernel sees it do is known to the call.
func rawSyscallELF() []byte {
	const base = 0x400000
	const hdr = 64 + 56 // ELF header and one program header
	le := binary.LittleEndian
	movEAX := func(nr uint32) []byte { return le.AppendUint32([]byte{0xb8}, nr) }
	sys := []byte{0x0f, 0x05}
	var code []byte
	code = append(append(code, movEAX(110)...), sys...) // getppid
	code = append(append(code, movEAX(102)...), sys...) // getuid
	code = append(code, movEAX(1)...)                   // write
	code = append(code, le.AppendUint32([]byte{0xbf}, 1)...)
	lea := len(code)
	code = append(code, 0x48, 0x8d, 0x35, 0, 0, 0, 0) // lea rsi, [rip+msg]
	code = append(append(code, le.AppendUint32([]byte{0xba}, 3)...), sys...)
	code = append(append(append(code, movEAX(231)...), 0x31, 0xff), sys...) // exit_group(0)
	le.PutUint32(code[lea+3:], uint32(len(code)-(lea+7)))
	code = append(code, "ok\n"...)
	total := uint64(hdr + len(code))

	var b bytes.Buffer
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	binary.Write(&b, le, struct {
		Type, Machine                                   uint16
		Version                                         uint32
		Entry, Phoff, Shoff                             uint64
		Flags                                           uint32
		Ehsize, Phentsize, Phnum, Shentsize, Shnum, Shx uint16
	}{2, 0x3e, 1, base + hdr, 64, 0, 0, 64, 56, 1, 0, 0, 0})
	binary.Write(&b, le, struct {
		Type, Flags                                 uint32
		Off, Vaddr, Paddr, Filesz, Memsz, Alignment uint64
	}{1, 5, 0, base, base, total, total, 0x1000})
	b.Write(code)
	return b.Bytes()
}

// The init installs the recording filter and executes the payload back to
// back, with no call of its own Go runtime in between: the profile learned
// from a program that makes a known set of calls holds exactly those, the
// execve that started it, and the four every learned profile allows (the
// kernel's signal-return and restart paths, and exiting). A run under it
// succeeds every time.
func TestLearnedProfileOfAStaticProgramIsExactlyItsCalls(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the hand-built program is x86-64 code")
	}
	e := newEnv(t)
	rootfs := t.TempDir()
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.Mkdir(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "prog"), rawSyscallELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	// The container's user namespace must be able to reach it.
	for _, d := range []string{rootfs, filepath.Dir(rootfs)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "prog.json")
	r := e.learn(out, []string{"--no-cap-trials"}, rootfs, "/bin/prog")
	if r.code != 0 || r.stdout != "ok\n" {
		t.Fatalf("learn: %v", r)
	}
	p := readLearned(t, out)
	var seen []string
	for n := range p.Observed.Syscalls {
		seen = append(seen, n)
	}
	slices.Sort(seen)
	if want := []string{"execve", "exit_group", "getppid", "getuid", "write"}; !slices.Equal(seen, want) {
		t.Errorf("observed %v, want exactly %v", seen, want)
	}
	want := []string{"execve", "exit", "exit_group", "getppid", "getuid", "restart_syscall", "rt_sigreturn", "write"}
	if got := p.allowedNames(); !slices.Equal(got, want) {
		t.Errorf("the profile allows %v, want exactly %v", got, want)
	}
	// Before the filter went in back to back with execve, a run under a
	// profile without the init's own calls failed now and then.
	for i := range 20 {
		r := e.userRun(nil, []string{"--profile", out}, rootfs, "/bin/prog")
		if r.code != 0 || r.stdout != "ok\n" {
			t.Fatalf("run %d under the learned profile: %v", i, r)
		}
	}
}

// An engine's container annotated run.bulwark.learn=PATH is learned
// through the OCI face alone (create, start, delete, as Docker drives
// it): create starts a recorder that outlives it, and once the container
// has ended the profile at PATH holds exactly the program's calls, under
// the config's own seccomp filter. A PATH that is relative, in a missing
// directory or in one anyone can write is refused at create, which leaves
// nothing behind.
func TestEngineContainerLearnsThroughTheAnnotation(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the hand-built program is x86-64 code")
	}
	e := newEnv(t)
	outDir := t.TempDir()
	out := filepath.Join(outDir, "prog.json")
	def, _, err := profiles.Resolve("default")
	if err != nil {
		t.Fatal(err)
	}
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/prog"}
		s.Linux.Seccomp = def
		s.Annotations = map[string]string{oci.AnnotationLearn: out}
	})
	if err := os.WriteFile(filepath.Join(bundle, "rootfs", "bin", "prog"), rawSyscallELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	id := e.id()
	e.mustOK("create", "-b", bundle, id)
	e.mustOK("start", id)
	waitStopped(t, e, id, nil)
	e.mustOK("delete", id)
	learntest.WaitProfile(t, out, 20*time.Second)
	p := readLearned(t, out)
	var seen []string
	for n := range p.Observed.Syscalls {
		seen = append(seen, n)
	}
	slices.Sort(seen)
	if want := []string{"execve", "exit_group", "getppid", "getuid", "write"}; !slices.Equal(seen, want) {
		t.Errorf("observed %v, want exactly %v", seen, want)
	}
	if want := []string{"execve", "exit", "exit_group", "getppid", "getuid", "restart_syscall", "rt_sigreturn", "write"}; !slices.Equal(p.allowedNames(), want) {
		t.Errorf("the profile allows %v, want exactly %v", p.allowedNames(), want)
	}
	if fi, err := os.Lstat(out); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Errorf("%s: %v, %v; want a regular file, mode 0644", out, fi, err)
	}

	learntest.WaitRecorderGone(t, id, 10*time.Second)

	// Created and deleted without a start: the recorder ends with the
	// init and writes no profile, only why.
	out2 := filepath.Join(outDir, "never.json")
	s := testrootfs.DefaultSpec()
	s.Process.Args = []string{"/bin/prog"}
	s.Annotations = map[string]string{oci.AnnotationLearn: out2}
	testrootfs.WriteConfig(t, bundle, s)
	id2 := e.id()
	e.mustOK("create", "-b", bundle, id2)
	time.Sleep(time.Second) // the recorder has read the container's state
	e.mustOK("delete", "--force", id2)
	learntest.WaitRecorderGone(t, id2, 10*time.Second)
	if _, err := os.Stat(out2); err == nil {
		t.Errorf("a container that never started left a profile at %s", out2)
	}
	if b, err := os.ReadFile(out2 + ".error"); err != nil || !strings.Contains(string(b), "nothing was recorded") {
		t.Errorf("%s.error: %q, %v; want why nothing was recorded", out2, b, err)
	}

	open := t.TempDir()
	if err := os.Chmod(open, 0o1777); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ path, want string }{
		{"prog.json", "want an absolute, clean path"},
		{"/nonexistent-dir/prog.json", "its directory must exist"},
		{filepath.Join(open, "prog.json"), "writable by root alone"},
		{"record", "a bundle names the file to write"},
	} {
		s := testrootfs.DefaultSpec()
		s.Annotations = map[string]string{oci.AnnotationLearn: bad.path}
		testrootfs.WriteConfig(t, bundle, s)
		id := e.id()
		r := e.bw("create", "-b", bundle, id)
		if r.code == 0 || !strings.Contains(r.stderr, "annotations."+oci.AnnotationLearn) || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("%s=%s: create %v, want a refusal naming the annotation and %q", oci.AnnotationLearn, bad.path, r, bad.want)
		}
		if st := e.bw("state", id); st.code == 0 {
			t.Errorf("%s: a refused create left container %s behind", bad.path, id)
		}
	}
}

// A profile learned from an engine's container runs that container again
// whatever its config says about no_new_privs (Docker's and Podman's
// default is without): the init loads the filter right before execve in
// both cases, so the learned filter, which holds only the program's calls,
// need not allow any of the init's. Learned through the annotation from a
// config without noNewPrivileges, as an engine writes it, then given back
// as linux.seccomp through create and start, without and with
// noNewPrivileges, as root and as uid 1000, a few times each.
func TestLearnedFilterRunsAnEngineContainerWithOrWithoutNoNewPrivileges(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the hand-built program is x86-64 code")
	}
	e := newEnv(t)
	out := filepath.Join(t.TempDir(), "prog.json")
	def, _, err := profiles.Resolve("default")
	if err != nil {
		t.Fatal(err)
	}
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/prog"}
		s.Process.NoNewPrivileges = false
		s.Linux.Seccomp = def
		s.Annotations = map[string]string{oci.AnnotationLearn: out}
	})
	if err := os.WriteFile(filepath.Join(bundle, "rootfs", "bin", "prog"), rawSyscallELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	id := e.id()
	e.mustOK("create", "-b", bundle, id)
	e.mustOK("start", id)
	waitStopped(t, e, id, nil)
	e.mustOK("delete", id)
	learntest.WaitProfile(t, out, 20*time.Second)
	learntest.WaitRecorderGone(t, id, 10*time.Second)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var learned struct{ Seccomp *specs.LinuxSeccomp }
	if err := json.Unmarshal(b, &learned); err != nil || learned.Seccomp == nil {
		t.Fatalf("%s: seccomp %v, %v", out, learned.Seccomp, err)
	}
	if want := []string{"execve", "exit", "exit_group", "getppid", "getuid", "restart_syscall", "rt_sigreturn", "write"}; !slices.Equal(readLearned(t, out).allowedNames(), want) {
		t.Fatalf("learned without no_new_privs, the profile allows %v, want exactly %v", readLearned(t, out).allowedNames(), want)
	}
	for _, c := range []struct {
		name string
		nnp  bool
		uid  uint32
	}{
		{"without noNewPrivileges, as root", false, 0},
		{"without noNewPrivileges, as uid 1000", false, 1000},
		{"with noNewPrivileges, as root", true, 0},
		{"with noNewPrivileges, as uid 1000", true, 1000},
	} {
		s := testrootfs.DefaultSpec()
		s.Process.Args = []string{"/bin/prog"}
		s.Process.NoNewPrivileges = c.nnp
		s.Process.User = specs.User{UID: c.uid, GID: c.uid}
		s.Linux.Seccomp = learned.Seccomp
		testrootfs.WriteConfig(t, bundle, s)
		for i := range 3 {
			id := e.id()
			r := e.bw("run", "-b", bundle, id)
			if r.code != 0 || r.stdout != "ok\n" {
				t.Errorf("%s, run %d: %v; want ok, exit 0", c.name, i, r)
				break
			}
		}
	}
}
