package netns

import (
	"net"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The namespace New makes is fresh (not ours), holds only lo, and lo is up;
// making it leaves the caller's own namespace untouched.
func TestNewMakesAFreshNamespaceWithOnlyLoopbackUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_ADMIN) to create network namespaces")
	}
	var before unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &before); err != nil {
		t.Fatal(err)
	}
	f, err := New()()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Ino == before.Ino {
		t.Fatal("the handle names the caller's own network namespace")
	}

	type result struct {
		ifs []net.Interface
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Left locked, so the thread ends, unless it gets back.
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, err}
			return
		}
		ifs, err := net.Interfaces()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{ifs, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.ifs) != 1 || r.ifs[0].Name != "lo" || r.ifs[0].Flags&net.FlagUp == 0 {
		t.Fatalf("interfaces in the new namespace: %+v, want only lo, up", r.ifs)
	}

	// Every thread of ours is back in (or never left) our namespace.
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/task/"+task.Name()+"/ns/net", &st); err != nil {
			continue // the thread ended
		}
		if st.Ino != before.Ino {
			t.Errorf("thread %s is left in another network namespace", task.Name())
		}
	}
}
