package vmagent

import "testing"

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
