package vmagent

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bulwark-sec/bulwark/internal/vmproto"
)

func TestModuleParams(t *testing.T) {
	cmdline := "console=ttyS0 quiet virtio_mmio.device=512@0xfeb00e00:12 virtio_mmio.device=512@0xfeb00c00:11 9p.debug=0 BULWARK_AGENT=1"
	tests := []struct{ path, want string }{
		{"/lib/modules/virtio_mmio.ko", "device=512@0xfeb00e00:12 device=512@0xfeb00c00:11"},
		{"/lib/modules/9p.ko", "debug=0"},
		{"/lib/modules/9pnet_virtio.ko", ""},
		{"/lib/modules/virtio-console.ko", ""},
	}
	for _, tc := range tests {
		if got := moduleParams(cmdline, tc.path); got != tc.want {
			t.Errorf("moduleParams(%s) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestGuestProcsSkipsKernelThreads reads a /proc laid out as the guest's:
// the agent, the payload with a command line, a process whose comm holds
// ") " (the stat line's fields start after the last ')'), and kernel
// threads, which are the guest kernel's, not the container's.
func TestGuestProcsSkipsKernelThreads(t *testing.T) {
	proc := t.TempDir()
	for _, p := range []struct{ pid, stat, cmdline, uid string }{
		{"1", "1 (init) S 0 1 1", "/init\x00", "0"},
		{"2", "2 (kthreadd) S 0 0 0", "", "0"},
		{"7", "7 (kworker/0:1) I 2 0 0", "", "0"},
		{"40", "40 (sh) S 1 40 40", "sh\x00-c\x00sleep 600\x00", "1000"},
		{"41", "41 (odd) name) R 40 40 40", "", "1000"},
	} {
		dir := filepath.Join(proc, p.pid)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, c := range map[string]string{"stat": p.stat, "cmdline": p.cmdline, "status": "Name:\tx\nUid:\t" + p.uid + "\t" + p.uid + "\t" + p.uid + "\t" + p.uid + "\n"} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Mkdir(filepath.Join(proc, "sys"), 0o755); err != nil {
		t.Fatal(err)
	}
	got := guestProcs(proc)
	want := []vmproto.Proc{
		{PID: 1, PPID: 0, UID: 0, State: "S", Command: "/init"},
		{PID: 40, PPID: 1, UID: 1000, State: "S", Command: "sh -c sleep 600"},
		{PID: 41, PPID: 40, UID: 1000, State: "R", Command: "[odd) name]"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("guestProcs = %+v\nwant %+v", got, want)
	}
}
