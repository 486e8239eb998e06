package mapped

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bulwark-sec/bulwark/pkg/image/snapshot"
)

// snapshot.Copy runs as root of the helper's namespace; root on the host
// stands in for it here.
func TestCopyTreeKeepsOwnersModesAndLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("snapshot.Copy chowns: run as root")
	}
	src := filepath.Join(t.TempDir(), "src")
	type ent struct {
		rel           string
		mode          os.FileMode // dir when ModeDir is set
		uid, gid      int
		link, content string
	}
	ents := []ent{
		{rel: ".", mode: os.ModeDir | 0o700, uid: 999, gid: 999},
		{rel: "conf", mode: 0o640, uid: 999, gid: 998, content: "c"},
		{rel: "mail", mode: os.ModeDir | os.ModeSetgid | 0o775, gid: 8},
		{rel: "mail/suid", mode: os.ModeSetuid | 0o755, uid: 33, gid: 33, content: "s"},
		{rel: "ln", link: "conf", uid: 1000, gid: 1000},
		{rel: "out", link: "/etc/passwd"},
	}
	for _, e := range ents {
		p := filepath.Join(src, e.rel)
		var err error
		switch {
		case e.link != "":
			err = os.Symlink(e.link, p)
		case e.mode.IsDir():
			err = os.Mkdir(p, 0o700)
		default:
			err = os.WriteFile(p, []byte(e.content), 0o600)
		}
		if err == nil {
			err = os.Lchown(p, e.uid, e.gid)
		}
		if err == nil && e.link == "" {
			err = os.Chmod(p, e.mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if err := snapshot.Copy(src, dst); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(dst, e.rel)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", e.rel, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != e.uid || int(st.Gid) != e.gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", e.rel, st.Uid, st.Gid, e.uid, e.gid)
		}
		if e.link != "" {
			if l, _ := os.Readlink(p); l != e.link {
				t.Errorf("%s: link to %q, want %q (copied as a link, never followed)", e.rel, l, e.link)
			}
			continue
		}
		if fi.Mode() != e.mode {
			t.Errorf("%s: mode %v, want %v", e.rel, fi.Mode(), e.mode)
		}
		if e.content != "" {
			if b, _ := os.ReadFile(p); string(b) != e.content {
				t.Errorf("%s: content %q", e.rel, b)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(dst, "fifo")); !os.IsNotExist(err) {
		t.Errorf("fifo copied: %v", err)
	}
}
