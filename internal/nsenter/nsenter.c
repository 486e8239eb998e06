// Runs before the Go runtime starts, in the process that becomes a container's
// init (or an exec'd process). Go cannot setns(2) into a mount or user
// namespace once it is multi-threaded, and unshare(CLONE_NEWPID) only affects
// children, so the namespace work has to happen here, single-threaded, and the
// pid namespace needs one fork.
//
// Protocol on the sync socket (fd from _BULWARK_INITPIPE), all text lines
// (the Go side is internal/initproto, bootstrap.go):
//   parent -> child: "oom N", "clone HEX", "join TYPE PATH", "timens CLOCK SEC NSEC", then "end"
//   child -> parent: "maps PID" (after unshare(CLONE_NEWUSER)); parent answers "ok"
//   child -> parent: "pid PID" (the final process)
// Nothing here depends on the cgroup, so the child goes on at once and its Go
// runtime starts while the runtime sets up the cgroups. A new cgroup
// namespace is not made here but by the init (pkg/containerinit), once it is in its
// cgroups, so that they are the namespace's root.
// Any read of EOF means the runtime died: exit at once so nothing is left behind.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

#define MAXJOIN 16

static int syncfd = -1;

// RLIMIT_NOFILE as the process started, before the Go runtime raises its
// soft limit: what the payload gets back at execve (nsenter.go StartNofile).
struct rlimit bulwark_start_nofile;
int bulwark_have_start_nofile;

static void bail(const char *fmt, ...) {
	char buf[512];
	int n;
	va_list ap;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	if (errno) {
		int m = snprintf(buf + n, sizeof(buf) - n - 1, ": %s", strerror(errno));
		if (m > 0 && n + m < (int)sizeof(buf) - 1)
			n += m;
	}
	buf[n++] = '\n';
	if (syncfd >= 0) {
		// "error ..." lets the runtime print why the container could not start.
		(void)!write(syncfd, "error ", 6);
		(void)!write(syncfd, buf, n);
	} else {
		(void)!write(2, buf, n);
	}
	_exit(1);
}

static int readline(int fd, char *buf, size_t size) {
	size_t i = 0;
	while (i + 1 < size) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(1); // parent gone: die quietly, leave nothing behind
		if (c == '\n')
			break;
		buf[i++] = c;
	}
	buf[i] = 0;
	return (int)i;
}

static void sendline(const char *fmt, ...) {
	char buf[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(syncfd, buf, n) != n)
		_exit(1);
}

static void waitok(void) {
	char buf[512];
	readline(syncfd, buf, sizeof(buf));
	if (strcmp(buf, "ok") != 0) {
		errno = 0;
		bail("nsenter: runtime refused: %s", buf);
	}
}

static int nstype(const char *name) {
	static const struct {
		const char *n;
		int f;
	} t[] = {
	    {"user", CLONE_NEWUSER}, {"mount", CLONE_NEWNS}, {"pid", CLONE_NEWPID},
	    {"network", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
	    {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].n, name) == 0)
			return t[i].f;
	return 0;
}

struct join {
	int type;
	int fd;
	char path[256];
};

__attribute__((constructor)) static void nsenter(void) {
	const char *env = getenv("_BULWARK_INITPIPE");
	if (!env || !*env)
		return;
	if (getrlimit(RLIMIT_NOFILE, &bulwark_start_nofile) == 0)
		bulwark_have_start_nofile = 1;
	syncfd = atoi(env);
	if (syncfd < 3)
		bail("nsenter: bad _BULWARK_INITPIPE %s", env);

	// Until the process execs its payload, nobody in the container may
	// ptrace it or open /proc/PID/{exe,mem,fd}: it still holds host fds.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		bail("nsenter: PR_SET_DUMPABLE");

	struct join joins[MAXJOIN];
	int njoin = 0;
	unsigned long cloneflags = 0;
	char timens[512] = "";
	size_t tlen = 0;
	char line[512];

	for (;;) {
		readline(syncfd, line, sizeof(line));
		if (strcmp(line, "end") == 0)
			break;
		if (strncmp(line, "clone ", 6) == 0) {
			cloneflags = strtoul(line + 6, NULL, 16);
		} else if (strncmp(line, "oom ", 4) == 0) {
			// Before entering a user namespace: lowering the score needs
			// CAP_SYS_RESOURCE in the initial namespace.
			int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
			const char *v = line + 4;
			if (fd < 0 || write(fd, v, strlen(v)) < 0)
				bail("nsenter: writing oom_score_adj %s", v);
			close(fd);
		} else if (strncmp(line, "join ", 5) == 0) {
			char *type = line + 5, *path = strchr(type, ' ');
			if (!path || njoin >= MAXJOIN) {
				errno = 0;
				bail("nsenter: bad join line %s", line);
			}
			*path++ = 0;
			struct join *j = &joins[njoin++];
			j->type = nstype(type);
			if (!j->type) {
				errno = 0;
				bail("nsenter: unknown namespace type %s", type);
			}
			snprintf(j->path, sizeof(j->path), "%s", path);
			// Open every path before joining any: after setns into the
			// mount namespace the host paths may no longer resolve.
			j->fd = open(path, O_RDONLY | O_CLOEXEC);
			if (j->fd < 0)
				bail("nsenter: open %s namespace %s", type, path);
		} else if (strncmp(line, "timens ", 7) == 0) {
			size_t l = strlen(line + 7);
			if (tlen + l + 2 >= sizeof(timens)) {
				errno = 0;
				bail("nsenter: too many time offsets");
			}
			memcpy(timens + tlen, line + 7, l);
			tlen += l;
			timens[tlen++] = '\n';
			timens[tlen] = 0;
		} else {
			errno = 0;
			bail("nsenter: unknown bootstrap line %s", line);
		}
	}

	// Join the given namespaces while still host root (this can enter
	// namespaces owned by any user namespace); the user namespace last, as
	// entering it drops our privileges over everything outside it.
	int joinuser = -1, joinpid = 0;
	for (int i = 0; i < njoin; i++) {
		if (joins[i].type == CLONE_NEWUSER) {
			joinuser = i;
			continue;
		}
		if (setns(joins[i].fd, joins[i].type) < 0)
			bail("nsenter: setns %s", joins[i].path);
		if (joins[i].type == CLONE_NEWPID)
			joinpid = 1;
		close(joins[i].fd);
	}
	if (joinuser >= 0) {
		if (setns(joins[joinuser].fd, CLONE_NEWUSER) < 0)
			bail("nsenter: setns %s", joins[joinuser].path);
		close(joins[joinuser].fd);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			bail("nsenter: root is not mapped in the joined user namespace");
	}

	if (cloneflags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			bail("nsenter: unshare user namespace");
		// Only a privileged process outside may write arbitrary maps.
		sendline("maps %d\n", getpid());
		waitok();
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			bail("nsenter: become root in the new user namespace");
	}

	// The init makes the cgroup namespace, once it is in its cgroups.
	if (cloneflags & CLONE_NEWCGROUP)
		bail("nsenter: a new cgroup namespace is made by the init, not in the bootstrap");
	unsigned long rest = cloneflags & ~CLONE_NEWUSER;
	if (rest && unshare(rest) < 0)
		bail("nsenter: unshare namespaces 0x%lx", rest);

	if (tlen > 0) {
		// In a new user namespace, becoming its root cleared our dumpable
		// flag, and /proc/self of a non-dumpable process belongs to the
		// host's root, whom we no longer are: open would fail with EACCES.
		// Dumpable only for the open, so /proc/self is our own; nothing
		// else runs with our uid in the fresh user namespace yet.
		int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
		if ((cloneflags & CLONE_NEWUSER) && dumpable != 1 && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
			bail("nsenter: prctl(PR_SET_DUMPABLE) for the time namespace offsets");
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if ((cloneflags & CLONE_NEWUSER) && dumpable >= 0 && dumpable != 1)
			prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0);
		if (fd < 0 || write(fd, timens, tlen) < 0)
			bail("nsenter: writing time namespace offsets");
		close(fd);
	}

	if ((cloneflags & (CLONE_NEWPID | CLONE_NEWTIME)) || joinpid) {
		pid_t child = fork();
		if (child < 0)
			bail("nsenter: fork into the pid namespace");
		if (child > 0) {
			// Report and leave: the child is re-parented to the runtime
			// (a subreaper) or its engine, like runc's init.
			sendline("pid %d\n", child);
			_exit(0);
		}
	} else {
		sendline("pid %d\n", getpid());
	}
}
