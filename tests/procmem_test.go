package tests

import (
	"os"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// procMemPayload is the container's own process: it starts a sleeping
// sibling, tries to open the sibling's /proc/PID/mem for writing from a
// second child (siblings, so Yama's ancestor rule does not apply), then
// tries process_vm_writev on it, writes its own memory through
// /proc/self/mem and lists the sibling with ps, then waits for a process
// started by `bulwark exec` to write its pid and tries the same on it.
// syscall openw opens and closes: it proves the open and writes nothing.
const procMemPayload = `sleep 1000 & sib=$!; echo $sib > /tmp/sibpid
echo sibling=$(sh -c "syscall openw /proc/$sib/mem") > /tmp/r
echo sibling_vmwrite=$(sh -c "syscall process_vm_writev $sib") >> /tmp/r
echo sibling_read=$(sh -c "syscall read /proc/$sib/stat 16") >> /tmp/r
echo self=$(syscall selfmem) >> /tmp/r
echo ps_payload=$(ps -o pid,args | grep -c '[s]leep 1000') >> /tmp/r
i=0; while [ ! -s /tmp/execpid ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
echo exec=$(syscall openw /proc/$(cat /tmp/execpid)/mem) >> /tmp/r
echo exec_read=$(syscall read /proc/$(cat /tmp/execpid)/stat 16) >> /tmp/r
echo done >> /tmp/r
i=0; while [ ! -e /tmp/finish ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
kill $sib; wait`

// yamaScope is kernel.yama.ptrace_scope, or -1 where Yama is not active.
func yamaScope() int {
	b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope")
	if err != nil {
		return -1
	}
	switch strings.TrimSpace(string(b)) {
	case "0":
		return 0
	case "1":
		return 1
	}
	return 2
}

// A process started by `bulwark exec` and the container's own processes
// must not reach each other's memory through /proc/PID/mem (which needs
// only the same uid and a dumpable target, whatever seccomp says about
// ptrace): each bulwark exec gets a Landlock domain of its own, and
// Landlock refuses ptrace access, /proc/PID/mem included, to a process
// outside the caller's domain or its children. Reading another process's
// /proc/PID/stat, as ps and top do, keeps working both ways.
//
// Between two processes of the container's own payload (one domain, one
// uid) the ptrace rule allows it, so the payload gets no write access
// beneath /proc: with a read-only rootfs (the default) Landlock refuses
// opening a sibling's mem for writing (EACCES). Landlock's rights add up
// along the path, so beneath a writable rootfs (the dev profile, Docker's
// under the floor) Landlock cannot take write access to /proc away, and
// there the container's procfs mount is read-only instead (EROFS). Either
// way the process's own /proc/self/mem is refused too, and ps still lists
// and reads its siblings. run.bulwark.landlock-proc: rw, the opt-out for a
// payload that writes its own /proc files, writes its own memory and its
// siblings' again. process_vm_writev is refused by seccomp in every case.
// The bulwark exec process stays out of reach in every case.
func TestProcMemOfABulwarkExecProcessIsOutOfTheContainersReach(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(e *env) string // starts the container, returns its id
		// procWrites: the payload may write beneath /proc (the
		// opt-out), so a sibling's mem and its own open for writing.
		procWrites bool
		// noSeccomp: the config has no seccomp filter, so
		// process_vm_writev is the kernel's decision alone.
		noSeccomp bool
	}{
		{"default", func(e *env) string {
			e.startUserRun(nil, userRootfs(t), "sh", "-c", procMemPayload)
			return e.ids[len(e.ids)-1]
		}, false, false},
		{"dev profile (writable rootfs)", func(e *env) string {
			e.startUserRun([]string{"--profile", "dev"}, userRootfs(t), "sh", "-c", procMemPayload)
			return e.ids[len(e.ids)-1]
		}, false, false},
		{"docker-shaped under --harden (writable rootfs)", func(e *env) string {
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				s.Process.Args = []string{"sh", "-c", procMemPayload}
				dockerShaped(s)
			})
			id := e.id()
			e.mustOK("--harden", "--policy", emptyPolicy(t), "run", "-d", "-b", bundle, id)
			return id
		}, false, false},
		{"docker-shaped with a read-only rootfs under --harden (docker run --read-only)", func(e *env) string {
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				s.Process.Args = []string{"sh", "-c", procMemPayload}
				dockerShaped(s)
				s.Root.Readonly = true
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"rw", "nosuid", "nodev", "noexec"}})
			})
			id := e.id()
			e.mustOK("--harden", "--policy", emptyPolicy(t), "run", "-d", "-b", bundle, id)
			return id
		}, false, false},
		{"landlock with run.bulwark.landlock-proc rw", func(e *env) string {
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				s.Process.Args = []string{"sh", "-c", procMemPayload}
				s.Annotations = map[string]string{oci.AnnotationLandlock: "enforce", oci.AnnotationLandlockProc: "rw"}
				s.Root.Readonly = true
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}})
			})
			id := e.id()
			e.mustOK("run", "-d", "-b", bundle, id)
			return id
		}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id := tc.start(e)
			var sib string
			for i := 0; i < 100 && sib == ""; i++ {
				if r := e.bw("exec", id, "cat", "/tmp/sibpid"); r.code == 0 {
					sib = strings.TrimSpace(r.stdout)
				} else {
					time.Sleep(100 * time.Millisecond)
				}
			}
			if sib == "" {
				t.Fatal("the container's payload never wrote its sibling's pid")
			}
			e.mustOK("exec", "-d", id, "sh", "-c", "echo $$ > /tmp/execpid; exec sleep 60")
			var got map[string]string
			for i := 0; i < 100; i++ {
				r := e.bw("exec", id, "cat", "/tmp/r")
				if got = kv(r.stdout); strings.Contains(r.stdout, "done") {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			// The other way: a bulwark exec process opens the payload's.
			from := kv(e.mustOK("exec", id, "sh", "-c", "echo exec_to_payload=$(syscall openw /proc/"+sib+"/mem); echo exec_to_payload_read=$(syscall read /proc/"+sib+"/stat 16); echo ps=$(ps -o pid,args | grep -c '[s]leep 1000')"))
			t.Logf("payload: %v, from exec: %v", got, from)
			e.bw("exec", id, "touch", "/tmp/finish")
			for _, k := range []string{"exec", "exec_to_payload"} {
				v := got[k]
				if k == "exec_to_payload" {
					v = from[k]
				}
				if v == "OK" || v == "" {
					t.Errorf("%s: opening /proc/PID/mem for writing across the container and a bulwark exec process = %q, want it refused", k, v)
				}
			}
			for _, k := range []string{"sibling_read", "exec_read", "exec_to_payload_read"} {
				v := got[k]
				if k == "exec_to_payload_read" {
					v = from[k]
				}
				if v != "OK" {
					t.Errorf("%s: reading another process's /proc/PID/stat = %q, want OK (ps and top read it)", k, v)
				}
			}
			if from["ps"] == "" || from["ps"] == "0" {
				t.Errorf("ps in a bulwark exec process does not list the payload's sleep: %v", from)
			}
			if got["ps_payload"] == "" || got["ps_payload"] == "0" {
				t.Errorf("ps in the payload does not list its sibling sleep: %v", got)
			}
			if v := got["sibling_vmwrite"]; !tc.noSeccomp && (v == "OK" || v == "") {
				t.Errorf("process_vm_writev to a sibling = %q, want it refused by seccomp", v)
			}
			if tc.procWrites {
				want := "OK"
				if yamaScope() >= 1 {
					// Yama refuses a non-descendant's mem.
					want = "EPERM"
				}
				if got["sibling"] != want {
					t.Errorf("with procfs writable, opening a sibling's /proc/PID/mem for writing = %q, want %s", got["sibling"], want)
				}
				if got["self"] != "OK" {
					t.Errorf("with procfs writable, writing the process's own memory through /proc/self/mem = %q, want OK", got["self"])
				}
				return
			}
			if v := got["sibling"]; v != "EACCES" && v != "EROFS" {
				t.Errorf("between the payload's own processes, opening a sibling's /proc/PID/mem for writing = %q, want it refused (EACCES from Landlock, or EROFS where the rootfs is writable)", v)
			}
			if v := got["self"]; v != "EACCES" && v != "EROFS" {
				t.Errorf("writing the process's own memory through /proc/self/mem = %q, want it refused like every write beneath /proc", v)
			}
		})
	}
}

// The same read-only procfs in a run by a user who is not root, where the
// init remounts the procfs it mounted in the user's own namespaces: under
// the dev profile (writable rootfs) a sibling's mem and the process's own
// are refused, and ps still lists the sibling.
func TestProcMemOfASiblingIsRefusedInARootlessDevRun(t *testing.T) {
	r := newRootlessEnv(t)
	rootfs := testrootfs.UserRootfs(t, r.u)
	res := r.bw("run", "--profile", "dev", rootfs, "--", "sh", "-c",
		`sleep 1000 & s=$!; echo sibling=$(sh -c "syscall openw /proc/$s/mem"); echo self=$(syscall selfmem); echo ps=$(ps -o pid,args | grep -c '[s]leep 1000'); echo rw=$(touch /marker && echo OK); kill $s`)
	if res.code != 0 {
		t.Fatalf("rootless dev run: %v", res)
	}
	got := kv(res.stdout)
	t.Logf("%v", got)
	if got["rw"] != "OK" {
		t.Fatalf("the dev profile's rootfs is not writable here (%v): the case this test is about does not arise", got)
	}
	for _, k := range []string{"sibling", "self"} {
		if v := got[k]; v != "EROFS" && v != "EACCES" {
			t.Errorf("%s: opening /proc/PID/mem for writing in a rootless dev run = %q, want it refused", k, v)
		}
	}
	if got["ps"] == "" || got["ps"] == "0" {
		t.Errorf("ps does not list the sibling: %v", got)
	}
}
