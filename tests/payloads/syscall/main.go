// syscall performs one raw system call named on the command line and prints
// "OK" or the errno name (EPERM, ENOSYS, ...). It exits 0 either way, so a
// test can tell "the call was refused" from "the payload broke" (exit 2 is a
// usage error). It is the workhorse of the escape suite.
//
// Arguments are chosen so that a call that is wrongly permitted still does
// no harm: where the kernel checks privilege before validating arguments,
// the arguments are invalid (reboot with a bad magic, kexec_load with a
// bogus architecture, pivot_root to a missing path), so "permitted" shows as
// EINVAL/ENOENT instead of as a reboot. Calls that create objects close them.
//
// Numbers accept 0x.. hex and symbolic names joined by '|', e.g.
//
//	syscall unshare CLONE_NEWUSER
//	syscall socket AF_PACKET SOCK_RAW 0
//	syscall ioctl 0xffffffff00005412
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
)

// call runs with the arguments after the syscall name and returns the errno
// (0 for success).
type call struct {
	usage string
	run   func(args []string) syscall.Errno
}

var calls map[string]call

// init builds the table because usage, reached from the entries, reads it.
func init() {
	calls = map[string]call{
		"getppid": {"", func([]string) syscall.Errno { return raw(unix.SYS_GETPPID) }},
		"mount": {"[SOURCE TARGET FSTYPE FLAGS DATA] (default: none /mnt tmpfs 0 \"\")", func(a []string) syscall.Errno {
			src, tgt, fs, data := arg(a, 0, "none"), arg(a, 1, "/mnt"), arg(a, 2, "tmpfs"), arg(a, 4, "")
			return errnoOf(unix.Mount(src, tgt, fs, uintptr(num(arg(a, 3, "0"))), data))
		}},
		"umount2": {"[TARGET FLAGS] (default: /mnt 0; EINVAL means permitted but not a mount)", func(a []string) syscall.Errno {
			return errnoOf(unix.Unmount(arg(a, 0, "/mnt"), int(num(arg(a, 1, "0")))))
		}},
		"keyctl": {"[OP ARG2] (default: KEYCTL_GET_KEYRING_ID on the session keyring)", func(a []string) syscall.Errno {
			return raw(unix.SYS_KEYCTL, num(arg(a, 0, "KEYCTL_GET_KEYRING_ID")), num(arg(a, 1, "KEY_SPEC_SESSION_KEYRING")), 0)
		}},
		"add_key": {"(adds a key to the process keyring, which dies with the process)", func([]string) syscall.Errno {
			_, err := unix.AddKey("user", "bulwark-probe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
			return errnoOf(err)
		}},
		"bpf": {"(BPF_MAP_CREATE of a 1-entry array)", func([]string) syscall.Errno {
			attr := [5]uint32{unix.BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0}
			return rawClose(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		}},
		"userfaultfd": {"", func([]string) syscall.Errno { return rawClose(unix.SYS_USERFAULTFD, unix.O_CLOEXEC) }},
		"io_uring_setup": {"", func([]string) syscall.Errno {
			var params [120]byte
			return rawClose(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params)))
		}},
		"perf_event_open": {"(software cpu-clock counter on self)", func([]string) syscall.Errno {
			attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK, Bits: unix.PerfBitDisabled}
			attr.Size = uint32(unsafe.Sizeof(attr))
			fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
			if err == nil {
				unix.Close(fd)
			}
			return errnoOf(err)
		}},
		"open_by_handle_at": {"(the 'shocker' attack: a handle for inode 2 relative to /)", func([]string) syscall.Errno {
			mfd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return errnoOf(err)
			}
			defer unix.Close(mfd)
			// struct file_handle { u32 handle_bytes; int handle_type; u8 f_handle[8] }
			// with FILEID_INO32_GEN (1): inode 2 (an ext4 root), generation 0.
			h := [4]uint32{8, 1, 2, 0}
			return rawClose(unix.SYS_OPEN_BY_HANDLE_AT, uintptr(mfd), uintptr(unsafe.Pointer(&h)), unix.O_RDONLY|unix.O_CLOEXEC)
		}},
		"ptrace": {"[attach PID] (default: PTRACE_TRACEME in a forked child)", func(a []string) syscall.Errno {
			if arg(a, 0, "") == "attach" {
				pid := int(num(arg(a, 1, "1")))
				err := unix.PtraceAttach(pid)
				if err == nil {
					var ws unix.WaitStatus
					unix.Wait4(pid, &ws, unix.WALL, nil)
					unix.PtraceDetach(pid)
				}
				return errnoOf(err)
			}
			return forked(0, unix.SYS_PTRACE, unix.PTRACE_TRACEME)
		}},
		"personality": {"[PERSONA] (default 0xffffffff: query)", func(a []string) syscall.Errno {
			return raw(unix.SYS_PERSONALITY, num(arg(a, 0, "0xffffffff")))
		}},
		"unshare": {"FLAGS (in a forked single-threaded child)", func(a []string) syscall.Errno {
			return forked(0, unix.SYS_UNSHARE, num(need(a, 0)))
		}},
		"clone": {"FLAGS (a raw clone; the child exits at once)", func(a []string) syscall.Errno {
			flags := num(need(a, 0))
			// These would make the child share our stack, thread group or
			// TLS: the parent could not survive them.
			const unsafeFlags = unix.CLONE_VM | unix.CLONE_THREAD | unix.CLONE_SIGHAND | unix.CLONE_SETTLS |
				unix.CLONE_VFORK | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_SETTID | unix.CLONE_CHILD_CLEARTID | unix.CLONE_PIDFD
			if flags&unsafeFlags != 0 {
				payload.Usage("clone: flags 0x%x cannot be tested safely from this payload", flags&unsafeFlags)
			}
			return forked(uintptr(flags), unix.SYS_GETPID)
		}},
		"setns": {"PATH [NSTYPE] (in a forked single-threaded child)", func(a []string) syscall.Errno {
			fd, err := unix.Open(need(a, 0), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return errnoOf(err)
			}
			defer unix.Close(fd)
			return forked(0, unix.SYS_SETNS, uintptr(fd), num(arg(a, 1, "0")))
		}},
		"socket": {"DOMAIN TYPE [PROTO]", func(a []string) syscall.Errno {
			return rawClose(unix.SYS_SOCKET, num(need(a, 0)), num(need(a, 1)), num(arg(a, 2, "0")))
		}},
		"mknod": {"[PATH TYPE MAJOR MINOR] (default: /tmp/bulwark-mknod S_IFCHR 1 3; removed again)", func(a []string) syscall.Errno {
			path := arg(a, 0, "/tmp/bulwark-mknod")
			mode := uint32(num(arg(a, 1, "S_IFCHR"))) | 0o600
			dev := unix.Mkdev(uint32(num(arg(a, 2, "1"))), uint32(num(arg(a, 3, "3"))))
			err := unix.Mknod(path, mode, int(dev))
			if err == nil {
				os.Remove(path)
			}
			return errnoOf(err)
		}},
		"ioctl": {"[CMD [FD]] (default: TIOCSTI on fd 0; high bits are passed through untouched)", func(a []string) syscall.Errno {
			// A space is the least harmful byte to push into a terminal.
			c := byte(' ')
			return raw(unix.SYS_IOCTL, num(arg(a, 1, "0")), num(arg(a, 0, "TIOCSTI")), uintptr(unsafe.Pointer(&c)))
		}},
		"kexec_load": {"(architecture 0xffff: EINVAL if the capability check passed)", func([]string) syscall.Errno {
			return raw(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0xffff<<16)
		}},
		"kexec_file_load": {"(bad fds: EBADF if permitted)", func([]string) syscall.Errno {
			return raw(unix.SYS_KEXEC_FILE_LOAD, ^uintptr(0), ^uintptr(0), 0, 0, unix.KEXEC_FILE_NO_INITRAMFS)
		}},
		"init_module": {"(empty image: EINVAL/EFAULT if permitted)", func([]string) syscall.Errno {
			empty := []byte{0}
			return raw(unix.SYS_INIT_MODULE, 0, 0, uintptr(unsafe.Pointer(&empty[0])))
		}},
		"finit_module": {"(fd -1: EBADF if permitted)", func([]string) syscall.Errno {
			empty := []byte{0}
			return raw(unix.SYS_FINIT_MODULE, ^uintptr(0), uintptr(unsafe.Pointer(&empty[0])), 0)
		}},
		"delete_module": {"(a module that does not exist: ENOENT if permitted)", func([]string) syscall.Errno {
			return errnoOf(unix.DeleteModule("bulwark_no_such_module", unix.O_NONBLOCK))
		}},
		"reboot": {"(wrong magic2: EINVAL if the capability check passed)", func([]string) syscall.Errno {
			return raw(unix.SYS_REBOOT, unix.LINUX_REBOOT_MAGIC1, 0, unix.LINUX_REBOOT_CMD_CAD_OFF)
		}},
		"chroot": {"[PATH] (default /)", func(a []string) syscall.Errno { return errnoOf(unix.Chroot(arg(a, 0, "/"))) }},
		"pivot_root": {"(missing paths: ENOENT if permitted)", func([]string) syscall.Errno {
			return errnoOf(unix.PivotRoot("/bulwark-no-such-dir", "/bulwark-no-such-dir"))
		}},
		"swapon": {"(missing path: ENOENT if permitted)", func([]string) syscall.Errno {
			return rawPath(unix.SYS_SWAPON, "/bulwark-no-such-file", 0)
		}},
		"swapoff": {"(missing path: ENOENT if permitted)", func([]string) syscall.Errno {
			return rawPath(unix.SYS_SWAPOFF, "/bulwark-no-such-file", 0)
		}},
		"acct": {"(missing path: ENOENT if permitted)", func([]string) syscall.Errno {
			return rawPath(unix.SYS_ACCT, "/bulwark-no-such-file", 0)
		}},
		"settimeofday": {"(NULL, NULL: passes the CAP_SYS_TIME check and changes nothing)", func([]string) syscall.Errno {
			return raw(unix.SYS_SETTIMEOFDAY, 0, 0)
		}},
		"clock_settime": {"(sets CLOCK_REALTIME to the time just read: microseconds of skew if permitted)", func([]string) syscall.Errno {
			var ts unix.Timespec
			if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
				return errnoOf(err)
			}
			return raw(unix.SYS_CLOCK_SETTIME, unix.CLOCK_REALTIME, uintptr(unsafe.Pointer(&ts)))
		}},
		"syslog": {"(SYSLOG_ACTION_READ_ALL: non-destructive read of the kernel log)", func([]string) syscall.Errno {
			buf := make([]byte, 4096)
			return raw(unix.SYS_SYSLOG, unix.SYSLOG_ACTION_READ_ALL, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		}},
		"sethostname": {"(sets the current hostname again)", func([]string) syscall.Errno {
			h, err := os.Hostname()
			if err != nil {
				return errnoOf(err)
			}
			return errnoOf(unix.Sethostname([]byte(h)))
		}},
		"iopl": {"[LEVEL] (default 3; lasts only for this process)", func(a []string) syscall.Errno {
			return raw(unix.SYS_IOPL, num(arg(a, 0, "3")))
		}},
		"ioperm": {"(port 0x80, lasts only for this process)", func([]string) syscall.Errno {
			return raw(unix.SYS_IOPERM, 0x80, 1, 1)
		}},
		"fsopen": {"[FSTYPE] (the new mount API; default tmpfs)", func(a []string) syscall.Errno {
			fd, err := unix.Fsopen(arg(a, 0, "tmpfs"), unix.FSOPEN_CLOEXEC)
			if err == nil {
				unix.Close(fd)
			}
			return errnoOf(err)
		}},
		"open_tree": {"[PATH] (OPEN_TREE_CLONE of /; the detached copy is dropped on close)", func(a []string) syscall.Errno {
			fd, err := unix.OpenTree(unix.AT_FDCWD, arg(a, 0, "/"), unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
			if err == nil {
				unix.Close(fd)
			}
			return errnoOf(err)
		}},
		"mount_setattr": {"PATH CLEAR (clears the MOUNT_ATTR_* flags CLEAR on the mount at PATH alone, e.g. MOUNT_ATTR_RDONLY: EPERM when the kernel locked them)", func(a []string) syscall.Errno {
			attr := &unix.MountAttr{Attr_clr: uint64(num(need(a, 1)))}
			return errnoOf(unix.MountSetattr(unix.AT_FDCWD, need(a, 0), 0, attr))
		}},
		"fanotify_init": {"", func([]string) syscall.Errno {
			return rawClose(unix.SYS_FANOTIFY_INIT, unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC, unix.O_RDONLY)
		}},
		"name_to_handle_at": {"[PATH] (default /)", func(a []string) syscall.Errno {
			_, _, err := unix.NameToHandleAt(unix.AT_FDCWD, arg(a, 0, "/"), 0)
			return errnoOf(err)
		}},
		"setuid": {"UID", func(a []string) syscall.Errno { return raw(unix.SYS_SETUID, num(need(a, 0))) }},
		"openw": {"PATH (open for writing without O_CREAT or O_TRUNC and close at once: proves the open, writes nothing)", func(a []string) syscall.Errno {
			fd, err := unix.Open(need(a, 0), unix.O_WRONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
			if err == nil {
				unix.Close(fd)
			}
			return errnoOf(err)
		}},
		"process_vm_writev": {"PID (one byte to address 0 of PID: the kernel checks ptrace access before the address, so OK means access was granted and the write faulted, writing nothing)", func(a []string) syscall.Errno {
			b := []byte{0}
			local := unix.Iovec{Base: &b[0], Len: 1}
			remote := unix.RemoteIovec{Base: 0, Len: 1}
			_, err := unix.ProcessVMWritev(int(num(need(a, 0))), []unix.Iovec{local}, []unix.RemoteIovec{remote}, 0)
			if err == unix.EFAULT {
				return 0
			}
			return errnoOf(err)
		}},
		"selfmem": {"(writes one byte of this process's own memory, a variable, back to itself through /proc/self/mem, as JITs and debuggers of themselves do)", func([]string) syscall.Errno {
			v := []byte{42}
			fd, err := unix.Open("/proc/self/mem", unix.O_RDWR|unix.O_CLOEXEC, 0)
			if err != nil {
				return errnoOf(err)
			}
			defer unix.Close(fd)
			if _, err := unix.Pwrite(fd, []byte{43}, int64(uintptr(unsafe.Pointer(&v[0])))); err != nil {
				return errnoOf(err)
			}
			if v[0] != 43 {
				fmt.Println("UNCHANGED")
				os.Exit(0)
			}
			runtime.KeepAlive(v)
			return 0
		}},
		"read": {"PATH [BYTES] (open read-only and read up to BYTES, default 512; prints EMPTY when the read returns nothing, as a masked path does)", func(a []string) syscall.Errno {
			return readSome(need(a, 0), int(num(arg(a, 1, "512"))))
		}},
		"blkread": {"PATH MAJOR MINOR (mknod a block node at PATH, read 512 bytes from it, remove it; after the mknod, failures print open:ERRNO or read:ERRNO)", func(a []string) syscall.Errno {
			path := need(a, 0)
			dev := unix.Mkdev(uint32(num(need(a, 1))), uint32(num(need(a, 2))))
			if err := unix.Mknod(path, unix.S_IFBLK|0o600, int(dev)); err != nil {
				return errnoOf(err)
			}
			defer os.Remove(path)
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				fmt.Println("open:" + payload.ErrnoName(err))
				os.Remove(path)
				os.Exit(0)
			}
			defer unix.Close(fd)
			buf := make([]byte, 512)
			if _, err := unix.Read(fd, buf); err != nil {
				fmt.Println("read:" + payload.ErrnoName(err))
				unix.Close(fd)
				os.Remove(path)
				os.Exit(0)
			}
			return 0
		}},
		"tiocsti": {"[CMD] (default TIOCSTI; pushes a space into a fresh pty made our controlling terminal, which nobody reads; setup failures print setup:ERRNO)", func(a []string) syscall.Errno {
			return tiocsti(num(arg(a, 0, "TIOCSTI")))
		}},
		"createmode": {"PATH MODE (create PATH exclusively with MODE, e.g. 0o4755, and keep it)", func(a []string) syscall.Errno {
			fd, err := unix.Open(need(a, 0), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(num(need(a, 1))))
			if err != nil {
				return errnoOf(err)
			}
			return errnoOf(unix.Close(fd))
		}},
		"create": {"PATH (create PATH exclusively, write one byte and remove it)", func(a []string) syscall.Errno {
			fd, err := unix.Open(need(a, 0), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
			if err != nil {
				return errnoOf(err)
			}
			defer unix.Unlink(need(a, 0))
			defer unix.Close(fd)
			_, err = unix.Write(fd, []byte{'x'})
			return errnoOf(err)
		}},
		"ptmxfill": {"COUNT [HOLD_SECONDS] (open /dev/ptmx up to COUNT times, print opened=N, hold them HOLD_SECONDS, default 0; the result is the errno that stopped it, OK if none)", func(a []string) syscall.Errno {
			count, hold := int(num(need(a, 0))), time.Duration(num(arg(a, 1, "0")))*time.Second
			var stop syscall.Errno
			n := 0
			for ; n < count; n++ {
				fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
				if err != nil {
					stop = errnoOf(err)
					break
				}
				_ = fd // held until exit
			}
			fmt.Printf("opened=%d\n", n)
			time.Sleep(hold)
			return stop
		}},
		"raw": {"NR [ARGS...] (any syscall by number, up to six arguments)", func(a []string) syscall.Errno {
			nr := num(need(a, 0))
			var v [6]uintptr
			for i := range v {
				v[i] = num(arg(a, i+1, "0"))
			}
			return raw(nr, v[:]...)
		}},
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	c, ok := calls[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "syscall: unknown call %q\n", os.Args[1])
		usage()
	}
	fmt.Println(payload.ErrnoName(c.run(os.Args[2:])))
}

func usage() {
	names := make([]string, 0, len(calls))
	for n := range calls {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: syscall NAME [ARGS...]\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-18s %s\n", n, calls[n].usage)
	}
	payload.Usage("%s", strings.TrimRight(b.String(), "\n"))
}

func raw(nr uintptr, a ...uintptr) syscall.Errno {
	var v [6]uintptr
	copy(v[:], a)
	_, _, e := unix.Syscall6(nr, v[0], v[1], v[2], v[3], v[4], v[5])
	return e
}

// rawClose is raw for calls that return a new fd on success.
func rawClose(nr uintptr, a ...uintptr) syscall.Errno {
	var v [6]uintptr
	copy(v[:], a)
	fd, _, e := unix.Syscall6(nr, v[0], v[1], v[2], v[3], v[4], v[5])
	if e == 0 {
		unix.Close(int(fd))
	}
	return e
}

func rawPath(nr uintptr, path string, a1 uintptr) syscall.Errno {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return errnoOf(err)
	}
	return raw(nr, uintptr(unsafe.Pointer(p)), a1)
}

// forked runs the call in a single-threaded child; a child killed by a
// signal (seccomp's KILL actions) is reported as the signal's name.
func forked(cloneFlags uintptr, nr uintptr, a ...uintptr) syscall.Errno {
	var v [6]uintptr
	copy(v[:], a)
	e, sig, err := payload.ForkSyscall(cloneFlags, nr, v[0], v[1], v[2], v[3], v[4], v[5])
	if err != nil {
		return errnoOf(err)
	}
	if sig != 0 {
		fmt.Println(unix.SignalName(syscall.Signal(-sig)))
		os.Exit(0)
	}
	return e
}

// readSome opens path read-only and reads up to n bytes.
func readSome(path string, n int) syscall.Errno {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return errnoOf(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, max(n, 1))
	got, err := unix.Read(fd, buf)
	if err != nil {
		return errnoOf(err)
	}
	if got == 0 {
		fmt.Println("EMPTY")
		unix.Close(fd)
		os.Exit(0)
	}
	return 0
}

// tiocsti is the terminal injection attack against a terminal of our own:
// TIOCSTI is only allowed on the caller's controlling terminal (without
// CAP_SYS_ADMIN), so the payload opens a new pty, becomes a session leader
// and takes the pty as its controlling terminal first. The injected space
// lands in an input queue that is discarded when the pty is closed.
func tiocsti(cmd uintptr) syscall.Errno {
	// Closing the master hangs up the terminal we lead: SIGHUP would kill
	// us before the result is printed.
	signal.Ignore(syscall.SIGHUP)
	setup := func(step string, err error) syscall.Errno {
		fmt.Printf("setup:%s:%s\n", step, payload.ErrnoName(err))
		os.Exit(0)
		return 0
	}
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return setup("ptmx", err)
	}
	defer unix.Close(m)
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		return setup("unlockpt", err)
	}
	s, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_CLOEXEC)
	if e != 0 {
		return setup("peer", e)
	}
	defer unix.Close(int(s))
	// EPERM from setsid means we already lead a session (a container's
	// init can), which is what TIOCSCTTY needs anyway.
	unix.Setsid()
	if err := unix.IoctlSetInt(int(s), unix.TIOCSCTTY, 0); err != nil {
		return setup("ctty", err)
	}
	c := byte(' ')
	return raw(unix.SYS_IOCTL, s, cmd, uintptr(unsafe.Pointer(&c)))
}

func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	payload.Usage("syscall: %v", err)
	return 0
}

func arg(a []string, i int, def string) string {
	if i < len(a) {
		return a[i]
	}
	return def
}

func need(a []string, i int) string {
	if i >= len(a) {
		usage()
	}
	return a[i]
}

// symbols are the names num accepts in place of numbers.
var symbols = map[string]uint64{
	"CLONE_NEWNS": unix.CLONE_NEWNS, "CLONE_NEWUTS": unix.CLONE_NEWUTS, "CLONE_NEWIPC": unix.CLONE_NEWIPC,
	"CLONE_NEWUSER": unix.CLONE_NEWUSER, "CLONE_NEWPID": unix.CLONE_NEWPID, "CLONE_NEWNET": unix.CLONE_NEWNET,
	"CLONE_NEWCGROUP": unix.CLONE_NEWCGROUP, "CLONE_NEWTIME": unix.CLONE_NEWTIME,
	"CLONE_FS": unix.CLONE_FS, "CLONE_FILES": unix.CLONE_FILES, "CLONE_SYSVSEM": unix.CLONE_SYSVSEM,
	"CLONE_PARENT": unix.CLONE_PARENT, "CLONE_PTRACE": unix.CLONE_PTRACE, "CLONE_UNTRACED": unix.CLONE_UNTRACED,
	"CLONE_IO": unix.CLONE_IO, "CLONE_VM": unix.CLONE_VM, "CLONE_THREAD": unix.CLONE_THREAD,
	"CLONE_SIGHAND": unix.CLONE_SIGHAND, "CLONE_VFORK": unix.CLONE_VFORK,
	"AF_UNIX": unix.AF_UNIX, "AF_INET": unix.AF_INET, "AF_INET6": unix.AF_INET6, "AF_NETLINK": unix.AF_NETLINK,
	"AF_PACKET": unix.AF_PACKET, "AF_KEY": unix.AF_KEY, "AF_VSOCK": unix.AF_VSOCK, "AF_ALG": unix.AF_ALG,
	"AF_BLUETOOTH": unix.AF_BLUETOOTH, "AF_APPLETALK": unix.AF_APPLETALK, "AF_AX25": unix.AF_AX25,
	"AF_X25": unix.AF_X25, "AF_DECnet": unix.AF_DECnet, "AF_CAN": unix.AF_CAN, "AF_TIPC": unix.AF_TIPC,
	"AF_RDS": unix.AF_RDS, "AF_XDP": unix.AF_XDP, "AF_IPX": unix.AF_IPX, "AF_LLC": unix.AF_LLC,
	"SOCK_STREAM": unix.SOCK_STREAM, "SOCK_DGRAM": unix.SOCK_DGRAM, "SOCK_RAW": unix.SOCK_RAW,
	"SOCK_SEQPACKET": unix.SOCK_SEQPACKET, "SOCK_CLOEXEC": unix.SOCK_CLOEXEC,
	"IPPROTO_TCP": unix.IPPROTO_TCP, "IPPROTO_UDP": unix.IPPROTO_UDP, "IPPROTO_ICMP": unix.IPPROTO_ICMP,
	"IPPROTO_RAW": unix.IPPROTO_RAW, "ETH_P_ALL": 0x0300, // htons(ETH_P_ALL)
	"NETLINK_ROUTE": unix.NETLINK_ROUTE, "NETLINK_AUDIT": unix.NETLINK_AUDIT,
	"S_IFCHR": unix.S_IFCHR, "S_IFBLK": unix.S_IFBLK, "S_IFIFO": unix.S_IFIFO, "S_IFREG": unix.S_IFREG,
	"TIOCSTI": unix.TIOCSTI, "TIOCLINUX": unix.TIOCLINUX, "TIOCSETD": unix.TIOCSETD,
	"MNT_DETACH": unix.MNT_DETACH, "MNT_FORCE": unix.MNT_FORCE,
	"MS_BIND": unix.MS_BIND, "MS_REC": unix.MS_REC, "MS_RDONLY": unix.MS_RDONLY, "MS_REMOUNT": unix.MS_REMOUNT,
	"MS_PRIVATE": unix.MS_PRIVATE, "MS_SHARED": unix.MS_SHARED, "MS_MOVE": unix.MS_MOVE,
	"MOUNT_ATTR_RDONLY": unix.MOUNT_ATTR_RDONLY, "MOUNT_ATTR_NOSUID": unix.MOUNT_ATTR_NOSUID,
	"MOUNT_ATTR_NODEV": unix.MOUNT_ATTR_NODEV, "MOUNT_ATTR_NOEXEC": unix.MOUNT_ATTR_NOEXEC,
	"KEYCTL_GET_KEYRING_ID": unix.KEYCTL_GET_KEYRING_ID, "KEYCTL_JOIN_SESSION_KEYRING": unix.KEYCTL_JOIN_SESSION_KEYRING,
	// Keyring ids are negative 32-bit ints; the kernel truncates the argument.
	"KEY_SPEC_SESSION_KEYRING": 0xfffffffd, "KEY_SPEC_PROCESS_KEYRING": 0xfffffffe,
	"ADDR_NO_RANDOMIZE": 0x0040000, "READ_IMPLIES_EXEC": 0x0400000, // linux/personality.h
	"PER_LINUX": 0, "PER_LINUX32": 0x0008,
}

func num(s string) uintptr {
	var v uint64
	for _, part := range strings.Split(s, "|") {
		part = strings.TrimSpace(part)
		if n, ok := symbols[part]; ok {
			v |= n
			continue
		}
		n, err := strconv.ParseUint(part, 0, 64)
		if err != nil {
			// Negative numbers (fds, keyring ids) as their two's complement.
			i, ierr := strconv.ParseInt(part, 0, 64)
			if ierr != nil {
				payload.Usage("syscall: %q is not a number or a known constant", part)
			}
			n = uint64(i)
		}
		v |= n
	}
	return uintptr(v)
}
