package vm

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bulwark-sec/bulwark/internal/cpio"
)

// cpioWriter adds archiving a whole tree to the kernel's initramfs
// format. Written here rather than shelling out to cpio(1) so the test
// needs no tool beyond QEMU and can add entries (/dev/console) that would
// need mknod on the host.
type cpioWriter struct{ *cpio.Writer }

func newCpioWriter(w io.Writer) cpioWriter { return cpioWriter{cpio.NewWriter(w)} }

// addTree archives every file, directory and symlink under dir, named
// relative to it, keeping modes and owners (the rootfs has a uid-1000 home).
// WalkDir's lexical order puts each directory before its contents, which
// the kernel's unpacker needs.
func (c cpioWriter) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		var data []byte
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			data = []byte(t)
		case fi.Mode().IsRegular():
			if data, err = os.ReadFile(p); err != nil {
				return err
			}
		case fi.IsDir():
		default:
			return fmt.Errorf("initramfs: %s: unsupported file type %v", p, fi.Mode().Type())
		}
		return c.Entry(rel, st.Mode, st.Uid, st.Gid, 0, 0, data)
	})
}

// writeInitramfs archives tree into an uncompressed cpio at out, plus the
// /dev/console node the kernel opens for init's stdio before /init runs
// (without it, init's output would go nowhere). Uncompressed because under
// TCG the guest decompresses far slower than it copies.
func writeInitramfs(tree, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	c := newCpioWriter(f)
	if err := c.addTree(tree); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(tree, "dev")); err != nil {
		if err := c.Entry("dev", syscall.S_IFDIR|0o755, 0, 0, 0, 0, nil); err != nil {
			return err
		}
	}
	if err := c.Entry("dev/console", syscall.S_IFCHR|0o600, 0, 0, 5, 1, nil); err != nil {
		return err
	}
	if err := c.Close(); err != nil {
		return err
	}
	return f.Close()
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// TestCpioWriterRoundTripsThroughBusyboxCpio checks the archive format the
// VM test depends on against an independent reader: busybox's cpio must
// list every entry (the synthetic /dev/console included) and extract file
// contents and symlink targets unchanged. A header off by one byte would
// otherwise surface only as a guest kernel that cannot find /init.
func TestCpioWriterRoundTripsThroughBusyboxCpio(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed (apt-get install busybox-static):", err)
	}
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Lengths 1..3 exercise every padding case of names and data.
	files := map[string]string{"a/b/x": "1", "a/yy": "22", "zzz": "333", "a/b/four": "4444"}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(tree, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("b/x", filepath.Join(tree, "a/link")); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := writeInitramfs(tree, archive); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	list := exec.Command(bb, "cpio", "-t")
	list.Stdin = f
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("busybox cpio -t: %v\n%s", err, out)
	}
	for _, want := range []string{"a", "a/b", "a/b/x", "a/b/four", "a/yy", "a/link", "zzz", "dev/console"} {
		if !strings.Contains("\n"+string(out), "\n"+want+"\n") {
			t.Errorf("entry %q missing from the archive listing:\n%s", want, out)
		}
	}

	dst := t.TempDir()
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	// -i without device nodes: extracting dev/console would need mknod,
	// which the listing above already covers.
	extract := exec.Command(bb, "cpio", "-i", "-d", "a/*", "zzz")
	extract.Dir, extract.Stdin = dst, f
	if out, err := extract.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio -i: %v\n%s", err, out)
	}
	for n, want := range files {
		got, err := os.ReadFile(filepath.Join(dst, n))
		if err != nil || string(got) != want {
			t.Errorf("%s: got %q, %v; want %q", n, got, err, want)
		}
	}
	if got, err := os.Readlink(filepath.Join(dst, "a/link")); err != nil || got != "b/x" {
		t.Errorf("a/link: got %q, %v; want b/x", got, err)
	}
}
