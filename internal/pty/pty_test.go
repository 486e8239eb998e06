package pty

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenGivesAConnectedPair opens a real pty: the slave must be the
// master's own (bytes written to it come out of the master), its name
// the master's number, and its device the one the fallback would accept.
func TestOpenGivesAConnectedPair(t *testing.T) {
	master, slave, name, err := Open("/dev/ptmx")
	if err != nil {
		t.Skipf("no pty on this host: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if want := "/dev/pts/" + strconv.FormatUint(uint64(n), 10); name != want {
		t.Errorf("name = %q, want %q", name, want)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(slave.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if !isSlave(st.Mode, st.Rdev, n) {
		t.Errorf("slave is device %d:%d mode %#o, not pts %d", unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Mode, n)
	}
	for _, fd := range []uintptr{master.Fd(), slave.Fd()} {
		flags, err := unix.FcntlInt(fd, unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("fd %d: F_GETFD = %#x, %v; want FD_CLOEXEC", fd, flags, err)
		}
	}
	if _, err := slave.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	got, err := master.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf[:got], []byte("ping")) {
		t.Errorf("master read %q, want what the slave wrote", buf[:got])
	}
}

func TestOpenRefusesWhatIsNotAMultiplexer(t *testing.T) {
	_, _, _, err := Open("/dev/null")
	if err == nil || !strings.Contains(err.Error(), "/dev/null") {
		t.Fatalf("Open(/dev/null) = %v, want an error naming it", err)
	}
}

func TestIsSlave(t *testing.T) {
	for _, c := range []struct {
		what string
		mode uint32
		rdev uint64
		n    uint32
		want bool
	}{
		{"pts 3", unix.S_IFCHR | 0o620, unix.Mkdev(136, 3), 3, true},
		{"pts 300", unix.S_IFCHR | 0o620, unix.Mkdev(137, 44), 300, true},
		{"another pts", unix.S_IFCHR | 0o620, unix.Mkdev(136, 4), 3, false},
		{"same minor, wrong major", unix.S_IFCHR | 0o620, unix.Mkdev(137, 3), 3, false},
		{"/dev/null", unix.S_IFCHR | 0o666, unix.Mkdev(1, 3), 3, false},
		{"a FIFO left at the name", unix.S_IFIFO | 0o666, 0, 0, false},
		{"a block device with the numbers", unix.S_IFBLK | 0o660, unix.Mkdev(136, 3), 3, false},
	} {
		if got := isSlave(c.mode, c.rdev, c.n); got != c.want {
			t.Errorf("%s: isSlave = %v, want %v", c.what, got, c.want)
		}
	}
}
