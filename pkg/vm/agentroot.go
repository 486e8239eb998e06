package vm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// EnvRoot set to "initramfs" boots even a kernel that could mount the
// agent's 9p root from an initramfs (measurements, and a way back).
const EnvRoot = "BULWARK_VM_ROOT"

// agentTag is the 9p tag of the agent's root.
const agentTag = "bulwark.agent"

// AgentRootDirs are the empty directories the agent's root needs: the
// early mounts' mount points and the rootfs share's. Next to them is the
// agent binary as "init".
var AgentRootDirs = []string{"dev", "proc", "sys", "rootfs"}

// NinepRoot says whether k boots the agent from a 9p root rather than an
// initramfs: a kernel with 9p and virtio-mmio built in (the minimal kernel)
// mounts root=TAG rootfstype=9p itself, with nothing to load first. The
// guest then reads only the pages of the agent it runs, over 9p, instead
// of unpacking the whole 10 MB binary from an initramfs before /init, at
// about 60 ms of CPU per MB under TCG (docs/vm.md). Debian's kernel builds
// 9p and virtio as modules, so it keeps the initramfs that carries them.
func NinepRoot(k *Kernel) bool {
	return k.Microvm && os.Getenv(EnvRoot) != "initramfs"
}

// agentRootBoot returns QEMU's arguments and the kernel command line's
// tail that boot the guest from the agent's root at dir. The share is
// read-only in QEMU (readonly=on) and mounted read-only by the guest:
// the binary every VM on the host boots is not the guest's to change.
// cache=loose: the files never change while the guest runs, so the guest
// may cache and read ahead (the share's 512 KiB messages) instead of
// asking for each 4 KiB page as it faults it in. multidevs=remap: init is
// a bind mount inside the directory in a VM container.
func agentRootBoot(dir string, microvm bool) (args []string, cmdline string) {
	dev := "pci"
	if microvm {
		dev = "device"
	}
	args = []string{
		"-fsdev", "local,id=agentfs,path=" + qemuEscape(dir) + ",security_model=none,readonly=on,multidevs=remap",
		"-device", "virtio-9p-" + dev + ",fsdev=agentfs,mount_tag=" + agentTag,
	}
	cmdline = " root=" + agentTag + " rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=524288,cache=loose ro init=/init"
	return args, cmdline
}

// agentRoot makes the agent's root in the run directory for a run that
// was not given one: the directories and the agent binary as init, linked
// where it can be, copied where not.
func (v *machine) agentRoot() (string, error) {
	agent := v.o.Agent
	if agent == "" {
		var err error
		if agent, err = os.Executable(); err != nil {
			return "", err
		}
	}
	if err := checkStatic(agent); err != nil {
		return "", err
	}
	dir := filepath.Join(v.dir, "agent")
	if err := MakeAgentRoot(dir); err != nil {
		return "", err
	}
	init := filepath.Join(dir, "init")
	if err := os.Link(agent, init); err == nil {
		return dir, nil
	}
	if err := copyFile(agent, init); err != nil {
		return "", fmt.Errorf("vm: the agent's root: %w", err)
	}
	return dir, nil
}

// MakeAgentRoot makes dir and the mount points of the agent's root in it;
// the caller puts the agent binary at dir/init.
func MakeAgentRoot(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("vm: the agent's root: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("vm: the agent's root: %w", err)
	}
	for _, d := range AgentRootDirs {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("vm: the agent's root: %w", err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o555)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
