package rootfs

import (
	"os"
	"os/exec"
	"testing"
)

// In the host pid namespace the translation must be the identity; the
// container case (a pid namespace under the host's /proc) is proven by
// tests/TestConfigIdmappedBindShiftsOwnership.
func TestProcfsPidIsTheIdentityInTheProcMountsNamespace(t *testing.T) {
	child := exec.Command("sleep", "100")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	for _, pid := range []int{os.Getpid(), child.Process.Pid} {
		got, err := procfsPid(pid)
		if err != nil || got != pid {
			t.Errorf("procfsPid(%d) = %d, %v", pid, got, err)
		}
	}
	if _, err := procfsPid(1 << 30); err == nil {
		t.Errorf("procfsPid of a pid that does not exist succeeded")
	}
}
