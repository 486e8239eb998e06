package vm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNoKVM: the host has no KVM that runs guests at hardware speed.
var ErrNoKVM = errors.New("no real hardware virtualisation (KVM)")

// ProbeResult says how guests run on this host.
type ProbeResult struct {
	Accel  string        // "kvm" or "tcg"
	Reason string        // why, for the warning, check and features
	Took   time.Duration // the timed guest code's run, when it ran
}

// probeLoops is how many iterations of a two-instruction loop the probe
// guest runs in ring 0: well under a millisecond on hardware
// virtualisation, seconds on a software hypervisor behind /dev/kvm
// (measured ~3,700x slower here), so the budget tells them apart.
const (
	probeLoops  = 200_000
	probeBudget = 20 * time.Millisecond
)

// KVM ioctls (linux/kvm.h) and the struct sizes they carry.
const (
	kvmGetAPIVersion       = 0xAE00
	kvmCreateVM            = 0xAE01
	kvmGetVCPUMmapSize     = 0xAE04
	kvmCreateVCPU          = 0xAE41
	kvmSetUserMemoryRegion = 0x4020AE46
	kvmRun                 = 0xAE80
	kvmGetRegs             = 0x8090AE81
	kvmSetRegs             = 0x4090AE82
	kvmGetSregs            = 0x8138AE83
	kvmSetSregs            = 0x4138AE84
	kvmExitHLT             = 5
)

// Probe decides between KVM and TCG by running guest code, not by
// opening /dev/kvm: a device that opens may still be a software
// hypervisor too slow to boot a kernel. $BULWARK_VM_ACCEL (kvm or tcg)
// overrides it.
func Probe() ProbeResult {
	switch a := os.Getenv("BULWARK_VM_ACCEL"); a {
	case "kvm", "tcg":
		return ProbeResult{Accel: a, Reason: "BULWARK_VM_ACCEL=" + a}
	}
	took, err := timeGuest("/dev/kvm")
	switch {
	case err != nil:
		return ProbeResult{Accel: "tcg", Reason: err.Error()}
	case took > probeBudget:
		return ProbeResult{Accel: "tcg", Took: took, Reason: fmt.Sprintf("/dev/kvm ran %d guest loop iterations in %v (hardware virtualisation takes well under %v): a software hypervisor", probeLoops, took.Round(time.Millisecond), probeBudget)}
	}
	return ProbeResult{Accel: "kvm", Took: took, Reason: fmt.Sprintf("/dev/kvm ran %d guest loop iterations in %v", probeLoops, took)}
}

// probeCode is 16-bit real-mode code loaded at 0x1000:
//
//	mov ecx, probeLoops ; 66 B9 imm32
//	loop: dec ecx       ; 66 49
//	jnz loop            ; 75 FC
//	hlt                 ; F4
func probeCode() []byte {
	code := []byte{0x66, 0xB9, 0, 0, 0, 0, 0x66, 0x49, 0x75, 0xFC, 0xF4}
	binary.LittleEndian.PutUint32(code[2:6], probeLoops)
	return code
}

func ioctl(fd int, req uintptr, arg uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

// timeGuest makes a one-vCPU VM with 64 KiB of memory, runs probeCode in
// real mode to its HLT and returns how long KVM_RUN took.
func timeGuest(dev string) (time.Duration, error) {
	kvm, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", dev, err)
	}
	defer unix.Close(kvm)
	if v, err := ioctl(kvm, kvmGetAPIVersion, 0); err != nil || v != 12 {
		return 0, fmt.Errorf("%s: KVM API version %d (%v), want 12", dev, v, err)
	}
	vmfd, err := ioctl(kvm, kvmCreateVM, 0)
	if err != nil {
		return 0, fmt.Errorf("%s: KVM_CREATE_VM: %w", dev, err)
	}
	defer unix.Close(int(vmfd))
	const memSize = 64 << 10
	mem, err := unix.Mmap(-1, 0, memSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(mem)
	copy(mem[0x1000:], probeCode())
	// struct kvm_userspace_memory_region: slot, flags, guest_phys_addr,
	// memory_size, userspace_addr.
	var region [32]byte
	binary.LittleEndian.PutUint64(region[16:], memSize)
	binary.LittleEndian.PutUint64(region[24:], uint64(uintptr(unsafe.Pointer(&mem[0]))))
	if _, err := ioctl(int(vmfd), kvmSetUserMemoryRegion, uintptr(unsafe.Pointer(&region[0]))); err != nil {
		return 0, fmt.Errorf("%s: KVM_SET_USER_MEMORY_REGION: %w", dev, err)
	}
	vcpu, err := ioctl(int(vmfd), kvmCreateVCPU, 0)
	if err != nil {
		return 0, fmt.Errorf("%s: KVM_CREATE_VCPU: %w", dev, err)
	}
	defer unix.Close(int(vcpu))
	runSize, err := ioctl(kvm, kvmGetVCPUMmapSize, 0)
	if err != nil || runSize < 12 {
		return 0, fmt.Errorf("%s: KVM_GET_VCPU_MMAP_SIZE: %d, %v", dev, runSize, err)
	}
	run, err := unix.Mmap(int(vcpu), 0, int(runSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(run)
	// Real mode with CS at 0 (struct kvm_sregs starts with cs: base u64,
	// limit u32, selector u16).
	var sregs [0x138]byte
	if _, err := ioctl(int(vcpu), kvmGetSregs, uintptr(unsafe.Pointer(&sregs[0]))); err != nil {
		return 0, fmt.Errorf("%s: KVM_GET_SREGS: %w", dev, err)
	}
	binary.LittleEndian.PutUint64(sregs[0:], 0)
	binary.LittleEndian.PutUint16(sregs[12:], 0)
	if _, err := ioctl(int(vcpu), kvmSetSregs, uintptr(unsafe.Pointer(&sregs[0]))); err != nil {
		return 0, fmt.Errorf("%s: KVM_SET_SREGS: %w", dev, err)
	}
	// struct kvm_regs: 16 general registers, rip, rflags.
	var regs [18 * 8]byte
	binary.LittleEndian.PutUint64(regs[16*8:], 0x1000)
	binary.LittleEndian.PutUint64(regs[17*8:], 0x2)
	if _, err := ioctl(int(vcpu), kvmSetRegs, uintptr(unsafe.Pointer(&regs[0]))); err != nil {
		return 0, fmt.Errorf("%s: KVM_SET_REGS: %w", dev, err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	for {
		_, err := ioctl(int(vcpu), kvmRun, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("%s: KVM_RUN of real-mode code: %w", dev, err)
		}
		if reason := binary.LittleEndian.Uint32(run[8:]); reason != kvmExitHLT {
			return 0, fmt.Errorf("%s: the probe guest exited with KVM exit reason %d, not HLT", dev, reason)
		}
		return time.Since(start), nil
	}
}

// TCGWarning is the loud line a run under TCG prints.
func TCGWarning(p ProbeResult) string {
	return fmt.Sprintf("WARNING: no real KVM (%s): the VM runs under QEMU's TCG emulator, which is slow and NOT a security boundary of KVM's strength; annotate run.bulwark.isolation=vm-strict to refuse instead", p.Reason)
}

// Host is what this host offers VM isolation, for check and features.
type Host struct {
	Probe     ProbeResult
	QEMU      string // path, "" when missing
	Virtiofsd string
	Kernel    string
	Problem   string // why a VM cannot start here; "" when one can
}

// Inspect looks for every part a VM run needs and probes KVM.
func Inspect() Host {
	h := Host{Probe: Probe(), QEMU: lookup("", DefaultQEMU), Virtiofsd: lookup("", DefaultVirtiofsd)}
	if k, err := FindKernel(); err == nil {
		h.Kernel = k.Path
	} else {
		h.Problem = err.Error()
	}
	if h.QEMU == "" {
		h.Problem = ErrNoQEMU.Error()
	}
	return h
}

// Preflight fails, naming the package to install, when QEMU or a guest
// kernel is missing: before the accelerator is chosen or warned about.
func Preflight(o *Options) error {
	if lookup(o.QEMU, DefaultQEMU) == "" {
		return ErrNoQEMU
	}
	_, err := FindKernel()
	return err
}

// ChooseAccel asks the probe for KVM; without real KVM the run falls back
// to TCG with a loud warning through warnf, or, when strict (the
// annotation's vm-strict), is refused naming the probe's reason.
func ChooseAccel(strict bool, strictName string, warnf func(string, ...any)) (string, error) {
	p := Probe()
	if p.Accel == "kvm" {
		return p.Accel, nil
	}
	if strict {
		return "", fmt.Errorf("%s: %w: %s", strictName, ErrNoKVM, p.Reason)
	}
	if warnf != nil {
		warnf("%s", TCGWarning(p))
	}
	return p.Accel, nil
}
