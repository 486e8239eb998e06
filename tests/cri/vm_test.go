package cri

import (
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/daemontest"
)

var (
	vmOnce sync.Once
	vmD    *daemon
	vmErr  string
)

// vmDaemon is a containerd whose handlers `bulwark install containerd
// --vm` wrote: bulwark and bulwark-vm (the wrapper running `bulwark
// --isolation vm`), what a RuntimeClass with handler bulwark-vm selects.
func vmDaemon(t *testing.T) *daemon {
	t.Helper()
	requireTools(t, crictlBin)
	if why := daemontest.VMMissing(); why != "" {
		t.Skip(why)
	}
	vmOnce.Do(func() {
		d, err := startDaemon("crivm", networkN(4), "runc", "", "", true)
		if err != nil {
			vmErr = err.Error()
			return
		}
		vmD = d
	})
	if vmD == nil {
		t.Fatalf("containerd's CRI with bulwark-vm is not usable: %s", vmErr)
	}
	return vmD
}

// TestVMHandlerRunsThePodsContainerInAVM: a pod with runtime handler
// bulwark-vm, as the kubelet runs one for a RuntimeClass with that
// handler. Its sandbox (the pause process, holding the pod's namespaces)
// is a namespace container, and the container runs in a VM of its own
// inside those namespaces: its log shows the guest's kernel, not the
// host's; the guest's eth0 has the pod's address (the pod's interface
// bridged into the guest); exec (synchronous, streamed, and -it with a
// pty of the guest) runs in the guest and passes the status back; stop
// delivers SIGTERM to the payload's trap; rm and rmp leave no QEMU, state
// or cgroup.
func TestVMHandlerRunsThePodsContainerInAVM(t *testing.T) {
	d := vmDaemon(t)
	podJSON := d.newPod(t, "vm", nil)
	pod := d.runPod(t, "bulwark-vm", podJSON)
	if h := field(d.inspect(t, "inspectp", pod), "info", "runtimeHandler"); h != "bulwark-vm" {
		t.Fatalf("pod's runtime handler is %v, want bulwark-vm", h)
	}
	assertRunByBulwark(t, d, pod)
	if _, raw := stateOf(pod); strings.Contains(raw, `"run.bulwark.isolation"`) {
		t.Errorf("the pod's sandbox is a VM container; want a namespace container: %s", raw)
	}
	if ps := daemontest.QEMUProcesses(); len(ps) > 0 {
		t.Errorf("QEMU runs for the sandbox alone: %v", ps)
	}
	c := d.startContainer(t, pod, podJSON, ctrConfig("guest", 0,
		[]string{"sh", "-c", `echo kernel=$(uname -r); trap "echo got-term; exit 0" TERM; while :; do sleep 1; done`}, nil))
	assertRunByBulwark(t, d, c)
	if _, raw := stateOf(c); !strings.Contains(raw, `"run.bulwark.isolation":"vm"`) {
		t.Errorf("the pod's container is not a VM container: %s", raw)
	}
	var host unix.Utsname
	unix.Uname(&host)
	hostRelease := unix.ByteSliceToString(host.Release[:])
	var logs string
	if !waitFor(180*time.Second, func() bool {
		logs = d.crictl(t, "logs", c).stdout
		return strings.Contains(logs, "kernel=")
	}) {
		t.Fatalf("no kernel= in the container's log within 180 s: %q\ncontainerd log:\n%s", logs, d.logTail())
	}
	if strings.Contains(logs, "kernel="+hostRelease) {
		t.Errorf("the container runs on the host's kernel %s: %q", hostRelease, logs)
	}
	if len(daemontest.QEMUProcesses()) == 0 {
		t.Error("no QEMU while the pod's container runs")
	}
	// crictl exec -s prints stdout only for a status 0.
	if out := d.ok(t, "exec", "-s", c, "sh", "-c", "echo exec-kernel=$(uname -r)"); !strings.HasPrefix(out, "exec-kernel=") ||
		out == "exec-kernel="+hostRelease {
		t.Errorf("crictl exec -s: %q, want the guest's kernel, not the host's %s", out, hostRelease)
	}
	if r := d.crictl(t, "exec", "-s", c, "sh", "-c", "exit 5"); r.code == 0 || !strings.Contains(r.stderr, "exited with 5") {
		t.Errorf("crictl exec -s: want exit 5: %v", r)
	}
	// The pod's interface is the guest's (the transparent bridge): its
	// address is the pod's.
	ip, _ := field(d.inspect(t, "inspectp", pod), "status", "network", "ip").(string)
	if out := d.ok(t, "exec", "-s", c, "ip", "-4", "-o", "addr", "show", "eth0"); ip == "" || !strings.Contains(out, ip+"/") {
		t.Errorf("the guest's eth0 %q does not have the pod's address %q", out, ip)
	}
	r := d.crictl(t, "exec", c, "sh", "-c", "echo streamed; exit 7")
	if r.code == 0 || !strings.Contains(r.stdout, "streamed") || !strings.Contains(r.stderr, "exit code 7") {
		t.Errorf("crictl exec: want output and exit code 7: %v", r)
	}
	// exec -it (kubectl exec -it): containerd's exec with a terminal, the
	// relay behind --console-socket, a pty of the guest.
	if _, err := exec.LookPath("script"); err == nil {
		line := "'" + crictlBin + "' --config '" + d.crictlConfig + "' exec -it " + c +
			` sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo guest-terminal; echo tty-kernel=$(uname -r); exit 6'`
		r := runCmd(t, 2*time.Minute, nil, "script", "-qefc", line, "/dev/null")
		if !strings.Contains(r.stdout, "/dev/pts/") || !strings.Contains(r.stdout, "guest-terminal") ||
			!strings.Contains(r.stdout, "tty-kernel=") || strings.Contains(r.stdout, "tty-kernel="+hostRelease) ||
			!strings.Contains(r.stdout, "exit code 6") {
			t.Errorf("crictl exec -it: want a pts of the guest's kernel and exit code 6: %v", r)
		}
	} else {
		t.Log("crictl exec -it not tried: no script(1) to give crictl a terminal")
	}
	d.ok(t, "stop", "--timeout", "60", c)
	st := d.inspect(t, "inspect", c)
	if s, code := field(st, "status", "state"), field(st, "status", "exitCode"); s != "CONTAINER_EXITED" || code != float64(0) {
		t.Errorf("after stop: %v, exit %v; want exited 0 (the payload's trap)", s, code)
	}
	if !strings.Contains(d.crictl(t, "logs", c).stdout, "got-term") {
		t.Errorf("stop's SIGTERM did not reach the payload's trap in the guest: %q", d.crictl(t, "logs", c).stdout)
	}
	d.ok(t, "rm", c)
	d.ok(t, "stopp", pod)
	d.ok(t, "rmp", pod)
	if ps := daemontest.QEMUProcesses(); len(ps) > 0 {
		t.Errorf("QEMU outlived crictl rm and rmp: %v", ps)
	}
	for _, id := range []string{c, pod} {
		if st := bulwarkState(id); st != "" {
			t.Errorf("bulwark state left after rm/rmp: %s", st)
		}
		if l := leftoverCgroups(id); len(l) > 0 {
			t.Errorf("cgroups of %s left: %v", id, l)
		}
	}
}

// TestVMHandlerContainerRestartsInTheSameSandbox: the kubelet's restart of
// an exited container, under bulwark-vm. The pod's network namespace
// outlives the first attempt's VM, and with it the redirect that VM put on
// the pod's interface; the second attempt takes it over and gets the
// pod's address in its own guest, as the first did.
func TestVMHandlerContainerRestartsInTheSameSandbox(t *testing.T) {
	d := vmDaemon(t)
	podJSON := d.newPod(t, "vm-restart", nil)
	pod := d.runPod(t, "bulwark-vm", podJSON)
	cmd := []string{"sh", "-c", "echo kernel=$(uname -r); ip -4 -o addr show eth0 | awk '{print $4}'; exit 3"}
	ip, _ := field(d.inspect(t, "inspectp", pod), "status", "network", "ip").(string)
	var host unix.Utsname
	unix.Uname(&host)
	hostRelease := unix.ByteSliceToString(host.Release[:])
	for attempt := 0; attempt < 2; attempt++ {
		c := d.startContainer(t, pod, podJSON, ctrConfig("app", attempt, cmd, nil))
		st := d.waitExited(t, c)
		if code := field(st, "status", "exitCode"); code != float64(3) {
			t.Fatalf("attempt %d exited %v, want 3; log %q\ncontainerd log:\n%s", attempt, code, d.crictl(t, "logs", c).stdout, d.logTail())
		}
		logs := d.ok(t, "logs", c)
		if !strings.Contains(logs, "kernel=") || strings.Contains(logs, "kernel="+hostRelease) {
			t.Errorf("attempt %d did not run in a guest: %q", attempt, logs)
		}
		if ip == "" || !strings.Contains(logs, ip+"/") {
			t.Errorf("attempt %d's guest eth0 %q lacks the pod's address %q", attempt, logs, ip)
		}
	}
	if !waitFor(30*time.Second, func() bool { return len(daemontest.QEMUProcesses()) == 0 }) {
		t.Errorf("QEMU left after both attempts exited: %v", daemontest.QEMUProcesses())
	}
}
