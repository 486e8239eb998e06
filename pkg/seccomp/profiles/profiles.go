package profiles

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Profile names accepted by ByName.
const (
	NameDefault    = "default"
	NameStrict     = "strict"
	NameNetAdmin   = "netadmin"
	NameUnconfined = "unconfined"
)

// nsFlags are the clone/unshare flags that create a namespace. CLONE_NEWTIME
// (0x80) has no effect through clone on old kernels, but unshare honours it.
var nsFlags = []struct {
	name string
	v    uint64
}{
	{"CLONE_NEWNS", unix.CLONE_NEWNS},
	{"CLONE_NEWUTS", unix.CLONE_NEWUTS},
	{"CLONE_NEWIPC", unix.CLONE_NEWIPC},
	{"CLONE_NEWUSER", unix.CLONE_NEWUSER},
	{"CLONE_NEWPID", unix.CLONE_NEWPID},
	{"CLONE_NEWNET", unix.CLONE_NEWNET},
	{"CLONE_NEWCGROUP", unix.CLONE_NEWCGROUP},
	{"CLONE_NEWTIME", unix.CLONE_NEWTIME},
}

// NamespaceFlags is the OR of every namespace-creating clone flag.
const NamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// rule is one OCI syscalls entry plus the reason a person is shown for it.
type rule struct {
	sc  specs.LinuxSyscall
	why string
}

func errnoRet(e unix.Errno) *uint {
	v := uint(e)
	return &v
}

func allow(why string, names ...string) rule {
	return rule{specs.LinuxSyscall{Names: names, Action: specs.ActAllow}, why}
}

func deny(e unix.Errno, why string, names ...string) rule {
	return rule{specs.LinuxSyscall{Names: names, Action: specs.ActErrno, ErrnoRet: errnoRet(e)}, why}
}

func cond(r rule, args ...specs.LinuxSeccompArg) rule {
	r.sc.Args = args
	return r
}

func arg(i uint, op specs.LinuxSeccompOperator, v uint64) specs.LinuxSeccompArg {
	return specs.LinuxSeccompArg{Index: i, Op: op, Value: v}
}

func masked(i uint, mask, v uint64) specs.LinuxSeccompArg {
	return specs.LinuxSeccompArg{Index: i, Op: specs.OpMaskedEqual, Value: mask, ValueTwo: v}
}

// defaultAllow is Docker's default allowlist (moby profiles/seccomp v0.2.3,
// unconditional part, plus its amd64 block's arch_prctl, without which no
// x86_64 program can set up thread-local storage) restricted to names libseccomp 2.5 knows, without
// ioctl, socketpair and name_to_handle_at (argument rules or denied below)
// and without the i386 multiplexers socketcall and ipc.
const defaultAllow = `accept accept4 access adjtimex alarm arch_prctl bind brk cachestat capget capset chdir chmod chown chown32
chroot clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl
fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64
fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait
futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid
geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid
getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list
getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents
io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen
listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack
membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap
mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
nanosleep newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2
pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename
renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask
rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop
semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid
setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list
setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget
shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn splice stat stat64 statfs statfs64
statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill
truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes
vfork vmsplice wait4 waitid waitpid write writev`

// deniedGroups are refused with EPERM in the default profile, each group
// with the reason explain shows. The package doc gives the longer story.
var deniedGroups = []struct {
	why   string
	names []string
}{
	{"reads or changes another process's memory, files or state", []string{"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise", "kcmp"}},
	{"the kernel keyring is not namespaced", []string{"keyctl", "add_key", "request_key"}},
	{"eBPF, perf, userfaultfd and io_uring are the richest sources of recent local privilege escalations", []string{"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register"}},
	{"mounting would change the container's view of the filesystem and reach filesystem code written for root", []string{"mount", "umount", "umount2", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "pivot_root"}},
	{"loads or replaces code in the host kernel", []string{"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "create_module", "get_kernel_syms", "query_module"}},
	{"opens host files by handle, bypassing the mount namespace (the \"shocker\" escape)", []string{"open_by_handle_at", "name_to_handle_at"}},
	{"changes host-global state or is an obsolete interface with a history of bugs", []string{"acct", "swapon", "swapoff", "reboot", "settimeofday", "clock_settime", "clock_settime64", "stime", "syslog", "quotactl", "quotactl_fd", "lookup_dcookie", "vhangup", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "iopl", "ioperm", "fanotify_init"}},
	{"joins another namespace", []string{"setns"}},
}

// nsRules allows name only without namespace flags and refuses each
// namespace flag with EPERM. One EPERM rule per flag because seccomp can
// test "any of these bits set" only bit by bit.
func nsRules(name string, flagArg uint) []rule {
	out := []rule{cond(allow(name+" without namespace flags creates threads and processes, or unshares fds and fs state", name),
		masked(flagArg, NamespaceFlags, 0))}
	for _, f := range nsFlags {
		out = append(out, cond(deny(unix.EPERM, f.name+" creates a namespace, the usual first step to regain capabilities and reach code written for root", name),
			masked(flagArg, f.v, f.v)))
	}
	return out
}

var socketFamilies = []struct {
	name string
	v    uint64
}{
	{"AF_UNIX", unix.AF_UNIX}, {"AF_INET", unix.AF_INET}, {"AF_INET6", unix.AF_INET6}, {"AF_NETLINK", unix.AF_NETLINK},
}

// familyRules allows socket families in allowed and refuses every other
// value of args[0] with EAFNOSUPPORT: one GT rule above the largest allowed
// family (which also catches values with the upper 32 bits set) and one EQ
// rule per gap below it.
func familyRules(name string, allowed []uint64, allowedNames []string) []rule {
	var out []rule
	ok := map[uint64]bool{}
	var max uint64
	for i, v := range allowed {
		ok[v] = true
		max = v
		out = append(out, cond(allow(allowedNames[i]+" is an ordinary socket family", name), arg(0, specs.OpEqualTo, v)))
	}
	const why = "socket families other than AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK are rarely needed and keep producing kernel CVEs"
	for v := uint64(0); v < max; v++ {
		if !ok[v] {
			out = append(out, cond(deny(unix.EAFNOSUPPORT, why, name), arg(0, specs.OpEqualTo, v)))
		}
	}
	return append(out, cond(deny(unix.EAFNOSUPPORT, why, name), arg(0, specs.OpGreaterThan, max)))
}

func defaultRules(extraFamilies ...struct {
	name string
	v    uint64
}) []rule {
	rules := []rule{allow("in the allowlist (Docker's default minus the denied calls)", strings.Fields(defaultAllow)...)}
	rules = append(rules, rule{specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.ENOSYS)},
		"clone3's flags are in memory where seccomp cannot check them; ENOSYS makes libc fall back to clone, whose flags are checked"})
	rules = append(rules, nsRules("clone", 0)...)
	rules = append(rules, nsRules("unshare", 0)...)
	var fams []uint64
	var famNames []string
	all := append(slices.Clone(socketFamilies), extraFamilies...)
	slices.SortFunc(all, func(a, b struct {
		name string
		v    uint64
	}) int {
		return cmp.Compare(a.v, b.v)
	})
	for _, f := range all {
		fams = append(fams, f.v)
		famNames = append(famNames, f.name)
	}
	rules = append(rules, familyRules("socket", fams, famNames)...)
	rules = append(rules, familyRules("socketpair", []uint64{unix.AF_UNIX}, []string{"AF_UNIX"})...)
	rules = append(rules,
		cond(deny(unix.EPERM, "TIOCSTI: pushes input into the terminal of another process", "ioctl"), masked(1, 0xffffffff, unix.TIOCSTI)),
		cond(deny(unix.EPERM, "TIOCLINUX: console paste and selection, the same attack on a virtual console", "ioctl"), masked(1, 0xffffffff, unix.TIOCLINUX)),
		// Always true; conditional only so that libseccomp keeps the two
		// denials above (see the package doc).
		cond(allow("every other ioctl command", "ioctl"), arg(1, specs.OpGreaterEqual, 0)),
	)
	for _, p := range []struct {
		v   uint64
		why string
	}{
		{0, "PER_LINUX"}, {8, "PER_LINUX32"}, {0x20000, "UNAME26"}, {0x20008, "PER_LINUX32|UNAME26"}, {0xffffffff, "query the current persona"},
	} {
		rules = append(rules, cond(allow("personality "+p.why+" is harmless; other values switch off ASLR or NX", "personality"), arg(0, specs.OpEqualTo, p.v)))
	}
	for _, g := range deniedGroups {
		rules = append(rules, deny(unix.EPERM, g.why, g.names...))
	}
	return rules
}

// strictAllow is the compute subset of Strict (see the package doc),
// traced from Debian's /bin/true, a threaded C program and python3 (each
// through glibc's loader) and static Go programs.
const strictAllow = `read write readv writev pread64 pwrite64 close fstat lseek fcntl dup dup2 dup3
exit exit_group rt_sigreturn rt_sigaction rt_sigprocmask sigaltstack restart_syscall tgkill
brk mmap munmap mremap mprotect madvise futex set_robust_list set_tid_address rseq arch_prctl
clock_gettime clock_getres clock_nanosleep nanosleep gettimeofday sched_yield sched_getaffinity
getpid gettid getppid getuid geteuid getgid getegid getgroups getresuid getresgid
getrandom sysinfo uname getrusage times poll ppoll execve epoll_pwait epoll_wait`

// strictFiles reads files anywhere and writes them where a writable mount
// is: the strict profile's rootfs is read-only, so that is /tmp (and
// /dev/shm), never the image.
const strictFiles = `open openat creat access faccessat faccessat2 stat lstat newfstatat statx statfs fstatfs
readlink readlinkat getdents64 getcwd ftruncate fsync fdatasync sendfile copy_file_range
unlink unlinkat rename renameat renameat2 mkdir mkdirat rmdir`

func strictRules() []rule {
	rules := []rule{
		allow("in the compute subset", strings.Fields(strictAllow)...),
		allow("files: reading anywhere, writing only where a writable mount is (the rootfs is read-only, so /tmp)", strings.Fields(strictFiles)...),
	}
	rules = append(rules, rule{specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.ENOSYS)},
		"clone3's flags are in memory where seccomp cannot check them; ENOSYS makes libc fall back to clone, whose flags are checked"})
	rules = append(rules,
		cond(allow("a thread (CLONE_THREAD without namespace flags)", "clone"), masked(0, unix.CLONE_THREAD|NamespaceFlags, unix.CLONE_THREAD)),
		cond(deny(unix.EPERM, "a new process: a compute job runs threads, not processes", "clone"), masked(0, unix.CLONE_THREAD, 0)),
	)
	for _, f := range nsFlags {
		rules = append(rules, cond(deny(unix.EPERM, f.name+" creates a namespace", "clone"), masked(0, f.v, f.v)))
	}
	rules = append(rules,
		cond(allow("reading the process's own resource limits", "prlimit64"), arg(0, specs.OpEqualTo, 0), arg(2, specs.OpEqualTo, 0)),
		cond(deny(unix.EPERM, "setting resource limits (the Go runtime tries to raise RLIMIT_NOFILE and copes with a refusal)", "prlimit64"), arg(2, specs.OpNotEqual, 0)),
		deny(unix.EPERM, "process attributes (the Go runtime names memory regions and copes with a refusal)", "prctl"),
		// glibc asks nscd over a unix socket before it reads /etc/passwd
		// (getpwuid: Python's start-up without HOME, id, whoami); a
		// refusal makes it read the file, a kill would end the program.
		cond(deny(unix.EPERM, "AF_UNIX sockets are refused (glibc's user lookups try nscd first and then read /etc/passwd); every other family kills", "socket"), arg(0, specs.OpEqualTo, unix.AF_UNIX)),
	)
	// x/sys/unix lacks FIOCLEX, FIONCLEX and FIONBIO (asm-generic/ioctls.h).
	for _, c := range []struct {
		name string
		v    uint64
		why  string
	}{
		{"TCGETS", unix.TCGETS, "is this a terminal (isatty: stdio asks)"},
		{"TIOCGWINSZ", unix.TIOCGWINSZ, "how wide is the terminal"},
		{"FIONREAD", unix.TIOCINQ, "how much is there to read"},
		{"FIOCLEX", 0x5451, "close-on-exec, as fcntl sets it (Python uses the ioctl)"},
		{"FIONCLEX", 0x5450, "clear close-on-exec, as fcntl does"},
		{"FIONBIO", 0x5421, "non-blocking mode, as fcntl sets it"},
	} {
		rules = append(rules, cond(allow("ioctl "+c.name+": "+c.why+"; any other command kills", "ioctl"), masked(1, 0xffffffff, c.v)))
	}
	return rules
}

func toSpec(def specs.LinuxSeccompAction, ret *uint, archs []specs.Arch, rules []rule) *specs.LinuxSeccomp {
	s := &specs.LinuxSeccomp{DefaultAction: def, DefaultErrnoRet: ret, Architectures: archs}
	for _, r := range rules {
		sc := r.sc
		sc.Names = append([]string(nil), sc.Names...)
		sc.Args = append([]specs.LinuxSeccompArg(nil), sc.Args...)
		s.Syscalls = append(s.Syscalls, sc)
	}
	return s
}

// Default returns a fresh copy of the default ("bullet-proof") profile; the
// caller may modify it.
func Default() *specs.LinuxSeccomp {
	return toSpec(specs.ActErrno, errnoRet(unix.ENOSYS), []specs.Arch{specs.ArchX86_64, specs.ArchX32}, defaultRules())
}

// NetAdmin is Default plus AF_PACKET sockets: the netadmin profile holds
// NET_RAW inside its own network namespace to capture and craft packets
// there (tcpdump, arping, DHCP clients), which needs packet sockets. Every
// other rare family stays refused.
func NetAdmin() *specs.LinuxSeccomp {
	return toSpec(specs.ActErrno, errnoRet(unix.ENOSYS), []specs.Arch{specs.ArchX86_64, specs.ArchX32}, defaultRules(struct {
		name string
		v    uint64
	}{"AF_PACKET", unix.AF_PACKET}))
}

// Strict returns a fresh copy of the compute-only profile.
func Strict() *specs.LinuxSeccomp {
	return toSpec(specs.ActKillProcess, nil, []specs.Arch{specs.ArchX86_64}, strictRules())
}

// Names lists the names ByName accepts, sorted.
func Names() []string {
	n := []string{NameDefault, NameStrict, NameNetAdmin, NameUnconfined}
	sort.Strings(n)
	return n
}

// ByName returns the named profile. "unconfined" returns (nil, nil): no
// seccomp filter, as when linux.seccomp is absent.
func ByName(name string) (*specs.LinuxSeccomp, error) {
	switch name {
	case NameDefault:
		return Default(), nil
	case NameStrict:
		return Strict(), nil
	case NameNetAdmin:
		return NetAdmin(), nil
	case NameUnconfined:
		return nil, nil
	}
	return nil, fmt.Errorf("unknown seccomp profile %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Reasons returns, for the named built-in profile, one human-readable reason
// per entry of its Syscalls (same index), for tools that explain a decision.
// It returns nil for "unconfined" and for unknown names.
func Reasons(name string) []string {
	var rules []rule
	switch name {
	case NameDefault:
		rules = defaultRules()
	case NameStrict:
		rules = strictRules()
	default:
		return nil
	}
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.why
	}
	return out
}
