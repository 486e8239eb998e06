package rawtty

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMakeAndRestoreOnAPty switches a real pty's slave side to raw mode
// and back: the flags a relay depends on must change, and Restore must
// put every one of them back.
func TestMakeAndRestoreOnAPty(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	defer master.Close()
	mfd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	fd := int(slave.Fd())
	before, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	old := Make(fd)
	if old == nil {
		t.Fatal("Make refused a pty")
	}
	raw, _ := unix.IoctlGetTermios(fd, unix.TCGETS)
	if raw.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG) != 0 || raw.Oflag&unix.OPOST != 0 || raw.Iflag&unix.ICRNL != 0 {
		t.Errorf("not raw: lflag %#x oflag %#x iflag %#x", raw.Lflag, raw.Oflag, raw.Iflag)
	}
	Restore(fd, old)
	after, _ := unix.IoctlGetTermios(fd, unix.TCGETS)
	if after.Lflag != before.Lflag || after.Oflag != before.Oflag || after.Iflag != before.Iflag || after.Cflag != before.Cflag {
		t.Errorf("Restore: got %+v, want %+v", after, before)
	}
}

func TestMakeOnANonTerminalChangesNothing(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if old := Make(int(f.Fd())); old != nil {
		t.Fatalf("Make on a regular file returned %+v", old)
	}
	Restore(int(f.Fd()), nil)
}
