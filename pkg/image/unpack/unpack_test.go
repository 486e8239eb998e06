package unpack

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

type ent struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
}

func tarOf(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Size: int64(len(e.body)), Uid: e.uid, Gid: e.gid}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox returns a layer dir inside a parent that also holds a "victim"
// directory: anything an entry writes outside the layer lands there or
// in the parent, and listParent shows it.
func sandbox(t *testing.T) (layer, outside string) {
	parent := t.TempDir()
	layer = filepath.Join(parent, "layer")
	outside = filepath.Join(parent, "victim")
	for _, d := range []string{layer, outside} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return layer, outside
}

// outsideDir in a test entry's link stands for the absolute path of the
// sandbox's directory outside the layer.
const outsideDir = "@outside"

func TestUnpackRefusesEscapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		ents []ent
		want error
	}{
		{"dotdot", []ent{{name: "../victim/x", body: "pwn"}}, ErrUnsafePath},
		{"dotdot inside", []ent{{name: "a/../../victim/x", body: "pwn"}}, ErrUnsafePath},
		{"absolute", []ent{{name: "/victim/x", body: "pwn"}}, ErrUnsafePath},
		{"symlink then file (outside)", []ent{{name: "l", typ: tar.TypeSymlink, link: "../victim"}, {name: "l/x", body: "pwn"}}, ErrUnsafePath},
		// outsideDir: the test's own directory outside the layer, by its
		// absolute path (the host's state must not decide the test).
		{"symlink then file (absolute)", []ent{{name: "l", typ: tar.TypeSymlink, link: outsideDir}, {name: "l/x", body: "pwn"}}, ErrUnsafePath},
		{"symlink then file (inside)", []ent{{name: "d", typ: tar.TypeDir, mode: 0o755}, {name: "l", typ: tar.TypeSymlink, link: "d"}, {name: "l/x", body: "pwn"}}, ErrUnsafePath},
		{"hardlink outside", []ent{{name: "h", typ: tar.TypeLink, link: "../victim/y"}}, ErrUnsafePath},
		{"hardlink absolute", []ent{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}, ErrUnsafePath},
		{"hardlink through symlink", []ent{{name: "l", typ: tar.TypeSymlink, link: "/etc"}, {name: "h", typ: tar.TypeLink, link: "l/passwd"}}, ErrUnsafePath},
		{"whiteout of dotdot", []ent{{name: "a/.wh...", typ: tar.TypeReg}}, ErrUnsafePath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layer, outside := sandbox(t)
			if err := os.WriteFile(filepath.Join(outside, "y"), []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			ents := slices.Clone(tc.ents)
			for i := range ents {
				if ents[i].link == outsideDir {
					ents[i].link = outside
				}
			}
			_, err := Unpack(bytes.NewReader(tarOf(t, ents...)), layer, Options{Privileged: os.Geteuid() == 0})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ee *EntryError
			if !errors.As(err, &ee) || ee.Entry == "" {
				t.Errorf("error %v does not name the entry", err)
			}
			names, _ := os.ReadDir(outside)
			if len(names) != 1 {
				t.Errorf("outside the layer now holds %d entries, want only y", len(names))
			}
		})
	}
}

func TestUnpackCaps(t *testing.T) {
	layer, _ := sandbox(t)
	bomb := tarOf(t, ent{name: "big", body: strings.Repeat("0", 1<<20)})
	_, err := Unpack(bytes.NewReader(bomb), layer, Options{MaxSize: 64 << 10})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("1 MiB file under a 64 KiB cap: err = %v, want ErrTooLarge", err)
	}
	layer, _ = sandbox(t)
	many := tarOf(t, ent{name: "a"}, ent{name: "b"}, ent{name: "c"})
	if _, err := Unpack(bytes.NewReader(many), layer, Options{MaxEntries: 2}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("3 entries under a cap of 2: err = %v, want ErrTooLarge", err)
	}
	layer, _ = sandbox(t)
	trunc := tarOf(t, ent{name: "a", body: strings.Repeat("x", 4096)})
	if _, err := Unpack(bytes.NewReader(trunc[:1000]), layer, Options{}); err == nil {
		t.Fatal("a truncated tar unpacked without error")
	}
}

func TestUnpackWhiteoutsAndLinks(t *testing.T) {
	layer, _ := sandbox(t)
	st, err := Unpack(bytes.NewReader(tarOf(t,
		ent{name: "./", typ: tar.TypeDir, mode: 0o755},
		ent{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		ent{name: "etc/.wh..wh..opq"},
		ent{name: "etc/hosts", body: "h"},
		ent{name: "etc/hosts.link", typ: tar.TypeLink, link: "etc/hosts"},
		ent{name: ".wh.gone"},
		ent{name: "bin/sh", typ: tar.TypeSymlink, link: "/bin/busybox"},
		ent{name: "suid", body: "x", mode: 0o4755},
		ent{name: "dev/null", typ: tar.TypeChar},
		ent{name: "etc/hosts", body: "later"}, // a later entry replaces an earlier one
	)), layer, Options{Privileged: os.Geteuid() == 0})
	if err != nil {
		t.Fatal(err)
	}
	var s unix.Stat_t
	if err := unix.Lstat(filepath.Join(layer, "gone"), &s); err != nil || s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != 0 {
		t.Errorf("whiteout: stat %v mode %o rdev %d, want a 0/0 char device", err, s.Mode, s.Rdev)
	}
	buf := make([]byte, 8)
	n, err := unix.Getxattr(filepath.Join(layer, "etc"), "trusted.overlay.opaque", buf)
	if os.Geteuid() == 0 && (err != nil || string(buf[:n]) != "y") {
		t.Errorf("opaque dir: xattr %q, %v", buf[:n], err)
	}
	if b, _ := os.ReadFile(filepath.Join(layer, "etc/hosts")); string(b) != "later" {
		t.Errorf("etc/hosts = %q, want the later entry", b)
	}
	var a, b unix.Stat_t
	_ = unix.Lstat(filepath.Join(layer, "etc/hosts.link"), &a)
	_ = unix.Lstat(filepath.Join(layer, "suid"), &b)
	if a.Ino == 0 || a.Nlink != 1 { // the replaced hosts kept the old inode's link only
		t.Errorf("hardlink: ino %d nlink %d", a.Ino, a.Nlink)
	}
	if b.Mode&0o7777 != 0o4755 {
		t.Errorf("suid mode = %o, want 4755", b.Mode&0o7777)
	}
	if l, _ := os.Readlink(filepath.Join(layer, "bin/sh")); l != "/bin/busybox" {
		t.Errorf("symlink = %q", l)
	}
	if os.Geteuid() != 0 && st.SkippedDevices != 1 {
		t.Errorf("skipped devices = %d, want 1 without privilege", st.SkippedDevices)
	}
}

func TestUnpackHardlinkShares(t *testing.T) {
	layer, _ := sandbox(t)
	if _, err := Unpack(bytes.NewReader(tarOf(t,
		ent{name: "a", body: "same"},
		ent{name: "b", typ: tar.TypeLink, link: "./a"},
	)), layer, Options{}); err != nil {
		t.Fatal(err)
	}
	var a, b unix.Stat_t
	_ = unix.Lstat(filepath.Join(layer, "a"), &a)
	_ = unix.Lstat(filepath.Join(layer, "b"), &b)
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("a and b: inodes %d %d, nlink %d; want one inode, 2 links", a.Ino, b.Ino, a.Nlink)
	}
	if fi, err := os.Stat(layer); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("layer root without a ./ entry: mode %v, %v; want 0755", fi.Mode(), err)
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(tarOf(f, ent{name: "a/b", body: "x"}, ent{name: "l", typ: tar.TypeSymlink, link: "../x"}, ent{name: "l/c"}))
	f.Add(tarOf(f, ent{name: "a/.wh..wh..opq"}, ent{name: ".wh.a"}, ent{name: "h", typ: tar.TypeLink, link: "a/b"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		layer, outside := sandbox(t)
		_, _ = Unpack(bytes.NewReader(data), layer, Options{MaxSize: 1 << 20, MaxEntries: 256})
		names, err := os.ReadDir(outside)
		if err != nil || len(names) != 0 {
			t.Fatalf("wrote outside the layer: %v %v", names, err)
		}
		parent, _ := os.ReadDir(filepath.Dir(layer))
		if len(parent) != 2 {
			t.Fatalf("parent of the layer holds %d entries, want 2", len(parent))
		}
	})
}

// Owners (a rootless unpack as root of a mapped user namespace) chowns
// and keeps setuid and setgid, but makes no device node; root stands in
// for the namespace's root here.
func TestUnpackOwnersWithoutDevices(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown: run as root")
	}
	layer, _ := sandbox(t)
	stats, err := Unpack(bytes.NewReader(tarOf(t,
		ent{name: "srv/", typ: tar.TypeDir, mode: 0o2770, uid: 999, gid: 50},
		ent{name: "srv/suid", body: "x", mode: 0o4755, uid: 33, gid: 34},
		ent{name: "srv/null", typ: tar.TypeChar, mode: 0o666},
	)), layer, Options{Owners: true, UserXattr: true})
	if err != nil {
		t.Fatal(err)
	}
	if stats.SkippedDevices != 1 {
		t.Errorf("SkippedDevices = %d, want 1", stats.SkippedDevices)
	}
	for _, c := range []struct {
		rel      string
		uid, gid uint32
		mode     uint32
	}{{"srv", 999, 50, 0o2770}, {"srv/suid", 33, 34, 0o4755}} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(layer, c.rel), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != c.uid || st.Gid != c.gid || st.Mode&0o7777 != c.mode {
			t.Errorf("%s: %d:%d %o, want %d:%d %o", c.rel, st.Uid, st.Gid, st.Mode&0o7777, c.uid, c.gid, c.mode)
		}
	}
	if _, err := os.Lstat(filepath.Join(layer, "srv/null")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a device node was made: %v", err)
	}
}
