package vm

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/network"
)

//go:embed guest/ipvlan.sh
var ipvlanChecks []byte

// ipvlanModules are what `--net ipvlan:IFACE` and `macvlan:IFACE` need of
// a Debian kernel: the drivers, and dummy for a parent link the guest makes.
var ipvlanModules = []string{
	"kernel/drivers/net/ipvlan/ipvlan.ko",
	"kernel/drivers/net/macvlan.ko",
	"kernel/drivers/net/dummy.ko",
}

// ipvlanPlugins are the CNI plugins those networks run.
var ipvlanPlugins = []string{"ipvlan", "macvlan", "host-device", "host-local"}

// ipvlanCheckNames: each check of guest/ipvlan.sh, once per mode.
var ipvlanCheckNames = func() []string {
	var names []string
	for _, mode := range []string{"ipvlan", "macvlan"} {
		for _, c := range []string{"parent_link", "run_detached", "container_address", "link_kind", "reach_by_name", "no_leftovers"} {
			names = append(names, mode+"_"+c)
		}
	}
	return append(names, "dedicated_moved_in", "dedicated_moved_back")
}()

// TestNetworkIPvlanAndMacvlanOnADummyParentInAGuest proves `bulwark run --net ipvlan:IFACE` where
// a kernel has the driver: this host's kernel has none (tests/network_test.go
// skips its ipvlan case), Debian's stock kernel has it as a module. The host
// has no dummy driver either, so macvlan runs here on a dummy parent too (on
// the host it runs on a veth stand-in). For each mode the guest makes a
// dummy parent, runs a server container on MODE:PARENT and a second
// container that reaches it by name, then checks that removing the server
// leaves no link, lease, network namespace or container; and a dummy
// interface handed over with dedicated:IFACE moves in and back.
func TestNetworkIPvlanAndMacvlanOnADummyParentInAGuest(t *testing.T) {
	qemu, kernel := needVM(t)
	kver := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	if _, err := os.Stat(filepath.Join("/lib/modules", kver, "modules.dep")); err != nil {
		t.Skipf("guest kernel %s has no modules here (the ipvlan driver is one): %v", kernel, err)
	}
	tree := t.TempDir()
	if err := os.Chmod(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyModules(kver, ipvlanModules, filepath.Join(tree, "modules")); err != nil {
		t.Fatal(err)
	}
	for _, p := range ipvlanPlugins {
		src := filepath.Join(network.PluginPath[0], p)
		if err := copyFile(src, filepath.Join(tree, network.PluginPath[0], p), 0o755); err != nil {
			t.Skipf("CNI plugin %s not installed (apt-get install containernetworking-plugins): %v", p, err)
		}
		// Debian links its plugins against glibc.
		if err := copySharedLibs(src, tree); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "bulwark")
	if err := testrootfs.BuildBulwark(bin); err != nil {
		t.Fatal(err)
	}
	// The CNI plugins run through bulwark-tools, which build.sh puts
	// next to the binary.
	for _, b := range []string{"bulwark", "bulwark-tools"} {
		if err := copyFile(filepath.Join(filepath.Dir(bin), b), filepath.Join(tree, "usr/local/bin", b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyFile(testrootfs.BusyboxPath, filepath.Join(tree, "bin/busybox"), 0o755); err != nil {
		t.Fatalf("busybox-static: %v", err)
	}
	write(t, filepath.Join(tree, "init"), guestInit, 0o755)
	write(t, filepath.Join(tree, "vm/run.sh"), ipvlanChecks, 0o755)
	rootfs := filepath.Join(tree, "rootfs")
	if err := testrootfs.Build(rootfs); err != nil {
		t.Fatal(err)
	}
	// Names resolve through hosts files only, as in tests/network_test.go.
	write(t, filepath.Join(rootfs, "etc/nsswitch.conf"), []byte("hosts: files\n"), 0o644)
	initrd, bootImage := packForBoot(t, tree, kernel)

	cmdline := "console=ttyS0 rdinit=/init panic=-1 loglevel=1 cgroup_no_v1=all"
	bootChecked(t, qemu, kernel, bootImage, initrd, cmdline, 4*time.Minute, ipvlanCheckNames)
}

// copySharedLibs copies the shared libraries bin needs, and its ELF
// interpreter, into tree at the paths ldd names, so a dynamically linked
// program of the host runs in the guest's busybox initramfs.
func copySharedLibs(bin, tree string) error {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		// "not a dynamic executable": nothing to copy.
		return nil
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		default:
			continue
		}
		if err := copyFile(lib, filepath.Join(tree, lib), 0o755); err != nil {
			return fmt.Errorf("library %s of %s: %w", lib, bin, err)
		}
	}
	return nil
}
