package initproto

import "fmt"

// Message is one frame's content: one Go type per kind of frame, so that a
// side handles a frame with a type switch and the compiler checks the names.
// The set is closed: only the types of this package are messages.
type Message interface {
	kind() kind
}

// kind is the first byte of a frame's body and selects its type.
type kind byte

// Kinds, in the order they flow during create. Zero is never a kind, so an
// empty or zeroed body is malformed.
const (
	kindConfig      kind = 1 + iota // runtime -> init: *InitConfig
	kindCgroup                      // runtime -> init: Cgroup
	kindHooks                       // init -> runtime: Hooks
	kindResume                      // runtime -> init: Resume
	kindConsole                     // init -> runtime: Console
	kindSeccomp                     // init -> runtime: Seccomp
	kindReady                       // init -> runtime: Ready
	kindError                       // init -> runtime: Error
	kindNamespaces                  // init -> runtime: Namespaces
	kindIdmapSource                 // init -> runtime: IdmapSource
	kindIdmapTree                   // runtime -> init: IdmapTree
	kindFuseOverlay                 // init -> runtime: FuseOverlay
)

var kindNames = [...]string{
	kindConfig: "config", kindCgroup: "cgroup", kindHooks: "hooks", kindResume: "resume",
	kindConsole: "console", kindSeccomp: "seccomp", kindReady: "ready", kindError: "error",
	kindNamespaces: "namespaces", kindIdmapSource: "idmap source", kindIdmapTree: "idmap tree",
	kindFuseOverlay: "fuse overlay",
}

func (k kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind %d", byte(k))
}

// Name is the message's kind as error messages and logs spell it.
func Name(m Message) string { return m.kind().String() }

// Cgroup tells an init whose config had CgroupPending that it is in its
// cgroups now, with its resources and rlimits set.
type Cgroup struct{}

// Hooks asks the runtime to run the prestart and createRuntime hooks, now
// that the container's namespaces and mounts exist; the init waits for
// Resume.
type Hooks struct{}

// Resume lets the init go on after Hooks, Seccomp or Ready.
type Resume struct{}

// Console carries the pty master (one attached fd) when the runtime relays
// the terminal itself instead of a --console-socket.
type Console struct{}

// Seccomp carries the seccomp notify fd (one attached fd) for the runtime to
// pass on to linux.seccomp.listenerPath; the init waits for Resume.
type Seccomp struct{}

// Namespaces carries the init's user and network namespaces (two attached
// fds, in that order) when its config asked for them (SendNamespaces): a
// user-mode network helper of the caller's joins them before the payload
// runs, which it could not do through /proc/PID/ns while the init is not
// dumpable. The init goes on without waiting.
type Namespaces struct{}

// IdmapSource asks the runtime for an id-mapped clone of the bind source
// of Spec.Mounts[Mount], which lies inside the rootfs of an init in a user
// namespace: the init resolved it at the mount's turn and attaches its
// O_PATH handle. Only a process privileged over the source's filesystem
// (host root) may id-map it; the init waits for IdmapTree.
type IdmapSource struct {
	Mount int
}

// IdmapTree answers IdmapSource with the detached, id-mapped clone (one
// attached fd), made in the container's mount namespace.
type IdmapTree struct{}

// FuseOverlay carries the /dev/fuse connection (one attached fd) the init
// mounted at its rootfs, in its own user and mount namespaces, for the
// runtime to start fuse-overlayfs on: the image snapshot of a rootless run
// whose overlay the kernel would not mount there (Reason says why), or
// that asked for fuse-overlayfs. The init waits for Resume before it
// touches the rootfs: until the daemon serves the connection, every
// access to it would wait.
type FuseOverlay struct {
	Reason string
}

// Ready says the process is set up: a create's init now waits for Resume and
// then for start, an exec'd process for Resume before its execve.
type Ready struct {
	Pid int
}

// Error is the reason the init could not build the container or process;
// the init exits after sending it.
type Error struct {
	Msg string
}

func (e Error) Error() string { return e.Msg }

func (*InitConfig) kind() kind { return kindConfig }
func (Cgroup) kind() kind      { return kindCgroup }
func (Hooks) kind() kind       { return kindHooks }
func (Resume) kind() kind      { return kindResume }
func (Console) kind() kind     { return kindConsole }
func (Seccomp) kind() kind     { return kindSeccomp }
func (Ready) kind() kind       { return kindReady }
func (Error) kind() kind       { return kindError }
func (Namespaces) kind() kind  { return kindNamespaces }
func (IdmapSource) kind() kind { return kindIdmapSource }
func (IdmapTree) kind() kind   { return kindIdmapTree }
func (FuseOverlay) kind() kind { return kindFuseOverlay }
