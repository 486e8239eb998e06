package engines

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	floorImageOnce sync.Once
	floorImageTar  string
	floorImageErr  error
)

// floorImageTarball is the test rootfs plus files owned by other users
// than root, as an image built here would have them: /home/app/secret
// (1000:1000, 0600, readable by its owner only) and /srv/data (2000:3000).
func floorImageTarball(t *testing.T) string {
	t.Helper()
	base := rootfsTarball(t)
	floorImageOnce.Do(func() {
		extra := filepath.Join(workDir, "floor-extra")
		for _, f := range []struct {
			path, content string
			uid, gid      int
			mode          os.FileMode
		}{{"home/app/secret", "s3cret\n", 1000, 1000, 0o600}, {"srv/data", "data\n", 2000, 3000, 0o644}} {
			p := filepath.Join(extra, f.path)
			if floorImageErr = os.MkdirAll(filepath.Dir(p), 0o755); floorImageErr != nil {
				return
			}
			if floorImageErr = os.WriteFile(p, []byte(f.content), f.mode); floorImageErr != nil {
				return
			}
			os.Chown(filepath.Dir(p), f.uid, f.gid)
			if floorImageErr = os.Chown(p, f.uid, f.gid); floorImageErr != nil {
				return
			}
		}
		floorImageTar = filepath.Join(workDir, "floor-image.tar")
		if b, err := exec.Command("cp", base, floorImageTar).CombinedOutput(); err != nil {
			floorImageErr = fmt.Errorf("cp: %v: %s", err, b)
			return
		}
		if b, err := exec.Command("tar", "-C", extra, "--numeric-owner", "--no-recursion", "-rf", floorImageTar, "./home/app/secret", "./srv", "./srv/data").CombinedOutput(); err != nil {
			floorImageErr = fmt.Errorf("tar: %v: %s", err, b)
		}
	})
	if floorImageErr != nil {
		t.Fatalf("building the floor test image: %v", floorImageErr)
	}
	return floorImageTar
}

// hardenWrapper is what `bulwark install --harden` registers: bulwark
// --harden, here with an empty policy so the host's policy.json stays out.
func hardenWrapper(t *testing.T) string {
	t.Helper()
	p := filepath.Join(workDir, "bulwark-harden")
	pol := filepath.Join(workDir, "floor-policy.json")
	if err := os.WriteFile(pol, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\nexec %s --harden --policy %s \"$@\"\n", bulwarkBin, pol)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	floorDockerOnce sync.Once
	floorDocker     *cliEngine
	floorDockerErr  error
)

// forEachFloorEngine runs f once per floor engine, docker and podman, each
// with the floor test image imported, as a subtest named after it.
func forEachFloorEngine(t *testing.T, f func(t *testing.T, e *cliEngine)) {
	t.Run("docker", func(t *testing.T) {
		e := *startFloorDocker(t)
		e.image = "bwfloor:1"
		f(t, &e)
	})
	t.Run("podman", func(t *testing.T) {
		p := startFloorPodman(t)
		if r := p.do(t, "import", floorImageTarball(t), "bwfloor:1"); r.code != 0 {
			t.Fatalf("podman import: %v", r)
		}
		p.image = "localhost/bwfloor:1"
		f(t, p)
	})
}

// startFloorDocker is a dockerd of its own with the floor's wrapper as its
// runtime (bulwark-harden), started once per test binary, with the floor
// test image imported.
func startFloorDocker(t *testing.T) *cliEngine {
	t.Helper()
	requireEngine(t, "dockerd", dockerBin, "containerd", "containerd-shim-runc-v2")
	floorDockerOnce.Do(func() {
		floorDocker, floorDockerErr = newDockerEngine(t, "docker-floor", "bulwark-harden", hardenWrapper(t))
		if floorDockerErr == nil {
			if r := floorDocker.do(t, "import", floorImageTarball(t), "bwfloor:1"); r.code != 0 {
				floorDockerErr = fmt.Errorf("docker import: %v", r)
			}
		}
	})
	if floorDockerErr != nil {
		t.Fatalf("dockerd with the floor: %v", floorDockerErr)
	}
	return floorDocker
}

// startFloorPodman is podman with the floor's wrapper as --runtime (a
// copy of the plain podman engine: podman has no daemon).
func startFloorPodman(t *testing.T) *cliEngine {
	t.Helper()
	p := *startPodman(t)
	p.global = append([]string{}, p.global...)
	for i, a := range p.global {
		if a == "--runtime" {
			p.global[i+1] = hardenWrapper(t)
		}
	}
	return &p
}

// Under the floor, a container the engine makes with no user namespace
// gets one: container root is an unprivileged host uid, while the image's
// files owned by several users keep their owners inside (uid 1000 reads
// its 0600 file), a volume's files too, and what container root writes to
// the volume is root-owned on the host disk. exec joins the container, and
// cp copies out of its rootfs, and with docker into it, also into a
// directory of the image (a copy-up through the engine's own overlay).
// podman cp into a running container is a known limit, recorded.
func TestFloorGivesEngineContainersAUserNamespace(t *testing.T) {
	forEachFloorEngine(t, func(t *testing.T, e *cliEngine) {
		vol := t.TempDir()
		os.Chmod(vol, 0o755)
		if err := os.WriteFile(filepath.Join(vol, "users"), []byte("u\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chown(filepath.Join(vol, "users"), 1000, 1000)
		name := e.start(t, "-v", vol+":/vol")

		m := strings.Fields(e.shell(t, name, "cat /proc/self/uid_map"))
		if len(m) != 3 || m[0] != "0" || m[1] == "0" || m[2] != "65536" {
			t.Fatalf("uid_map inside = %v, want container root mapped to a pool range, not host root", m)
		}
		if got := e.shell(t, name, "stat -c %u:%g /home/app/secret /srv/data /vol/users | tr '\\n' ' '"); got != "1000:1000 2000:3000 1000:1000" {
			t.Errorf("owners inside = %q, want the image's and the volume's own (1000:1000 2000:3000 1000:1000)", got)
		}
		if got := strings.TrimSpace(e.ok(t, "exec", "-u", "1000", name, "cat", "/home/app/secret")); got != "s3cret" {
			t.Errorf("uid 1000 reading its own 0600 file: %q", got)
		}
		e.shell(t, name, "echo v > /vol/new && echo r > /created")
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(vol, "new"), &st); err != nil || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("file container root wrote to the volume: host owner %d:%d (%v), want 0:0", st.Uid, st.Gid, err)
		}
		in := filepath.Join(t.TempDir(), "in")
		os.WriteFile(in, []byte("copied in\n"), 0o644)
		// /tmp is a directory of the image the container has not looked
		// at (docker copies it up through its own overlay), / one it has
		// written to. /srv it has looked at (stat above) and not written
		// to: the container's overlay cached it as lower-only, so what the
		// engine adds there stays out of its sight until the cache drops
		// it (docs/engines.md); recorded, not asserted.
		for _, dst := range []string{"/tmp/in", "/in"} {
			r := e.do(t, "cp", in, name+":"+dst)
			if r.code != 0 && e.name == "podman" {
				// Known limit (docs/engines.md): podman writes from inside
				// the container's mount namespace as the host's root, whose
				// uid the idmapped rootfs cannot store (EOVERFLOW).
				t.Logf("%s cp into the running container: %v", e.name, r)
				break
			}
			if r.code != 0 {
				t.Errorf("%s cp into the running container's %s: %v", e.name, dst, r)
				continue
			}
			if got := e.shell(t, name, "cat "+dst+"; stat -c %u "+dst); got != "copied in\n0" {
				t.Errorf("file copied in with cp to %s, seen inside: %q, want its content owned by root", dst, got)
			}
		}
		if r := e.do(t, "cp", in, name+":/srv/in"); r.code == 0 {
			t.Logf("%s cp into a directory the container has looked at, seen inside: %q", e.name, e.do(t, "exec", name, "cat", "/srv/in"))
		}
		out := filepath.Join(t.TempDir(), "out")
		e.ok(t, "cp", name+":/created", out)
		if b, _ := os.ReadFile(out); string(b) != "r\n" {
			t.Errorf("file container root wrote, copied out with cp: %q", b)
		}
	})
}

// The same through containerd (ctr, the runc shim running the floor's
// wrapper): no cp in ctr, the rest as for docker and podman.
func TestFloorGivesContainerdContainersAUserNamespace(t *testing.T) {
	e := startContainerd(t)
	const image = "docker.io/library/bwfloor:1"
	archive := filepath.Join(workDir, "floor-image-oci.tar")
	if err := writeOCIArchive(archive, floorImageTarball(t), image); err != nil {
		t.Fatal(err)
	}
	e.ok(t, "image", "import", archive)
	vol := t.TempDir()
	os.Chmod(vol, 0o755)
	if err := os.WriteFile(filepath.Join(vol, "users"), []byte("u\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(vol, "users"), 1000, 1000)
	id := e.id(t)
	e.ok(t, "run", "-d", "--runtime", "io.containerd.runc.v2", "--runc-binary", hardenWrapper(t), "--runc-root", e.runcRoot,
		"--mount", "type=bind,src="+vol+",dst=/vol,options=rbind:rw", image, id, "sleep", "100000")
	t.Cleanup(func() {
		e.do(t, "task", "kill", "-s", "SIGKILL", id)
		waitFor(10*time.Second, func() bool {
			return !strings.Contains(e.do(t, "task", "ls").stdout, id) || e.do(t, "task", "delete", id).code == 0
		})
		e.do(t, "task", "delete", "-f", id)
		e.do(t, "container", "rm", id)
	})
	sh := func(user, script string) string {
		t.Helper()
		a := []string{"task", "exec", "--exec-id", fmt.Sprintf("x%d", nameSeq.Add(1))}
		if user != "" {
			a = append(a, "--user", user)
		}
		return strings.TrimSpace(e.ok(t, append(a, id, "sh", "-c", script)...))
	}
	m := strings.Fields(sh("", "cat /proc/self/uid_map"))
	if len(m) != 3 || m[0] != "0" || m[1] == "0" || m[2] != "65536" {
		t.Fatalf("uid_map inside = %v, want container root mapped to a pool range, not host root", m)
	}
	if got := sh("", "stat -c %u:%g /home/app/secret /srv/data /vol/users | tr '\\n' ' '"); got != "1000:1000 2000:3000 1000:1000" {
		t.Errorf("owners inside = %q, want the image's and the volume's own", got)
	}
	if got := sh("1000", "cat /home/app/secret"); got != "s3cret" {
		t.Errorf("uid 1000 reading its own 0600 file: %q", got)
	}
	sh("", "echo v > /vol/new")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(vol, "new"), &st); err != nil || st.Uid != 0 {
		t.Errorf("file container root wrote to the volume: host owner %d (%v), want 0", st.Uid, err)
	}
}

// Copying into and out of a floor container (docs/engines.md, "cp under
// the floor"). Out works while it runs. In, while it runs, is limited by
// the kernel (pkg/rootfs TestRelayeredOverlayLimitsForTheHostsRoot):
// podman's copy fails with EOVERFLOW, docker's is seen only in directories
// the container has not looked at. What works everywhere: copying into the
// stopped container, then starting it, and writing through exec -i; both
// give files that container root owns and can change.
func TestFloorCopyIntoAndOutOfEngineContainers(t *testing.T) {
	forEachFloorEngine(t, func(t *testing.T, e *cliEngine) {
		name := e.start(t)
		in := filepath.Join(t.TempDir(), "in")
		os.WriteFile(in, []byte("copied in\n"), 0o644)

		// Out of the running container: what container root wrote.
		e.shell(t, name, "echo r > /created && stat /srv/data >/dev/null")
		out := filepath.Join(t.TempDir(), "out")
		e.ok(t, "cp", name+":/created", out)
		if b, _ := os.ReadFile(out); string(b) != "r\n" {
			t.Errorf("file container root wrote, copied out with cp: %q", b)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(out, &st); err != nil || st.Uid != 0 {
			t.Errorf("copied out: host owner %d (%v), want 0 (container root's file is root's on disk)", st.Uid, err)
		}

		// Into the running container.
		r := e.do(t, "cp", in, name+":/tmp/in")
		switch {
		case e.name == "podman":
			if r.code == 0 || !strings.Contains(r.stderr, "value too large") {
				t.Errorf("podman cp into the running floor container: %v; docs/engines.md says it fails with EOVERFLOW: update them", r)
			}
		case r.code != 0:
			t.Errorf("docker cp into a directory the running container has not looked at: %v", r)
		default:
			if got := e.shell(t, name, "cat /tmp/in; stat -c %u:%g /tmp/in"); got != "copied in\n0:0" {
				t.Errorf("docker cp into /tmp, seen inside: %q, want the content owned by root", got)
			}
		}

		// Through exec -i: written by container root, in a directory the
		// container has looked at.
		a := append(append([]string{}, e.global...), "exec", "-i", name, "sh", "-c", "cat > /srv/piped")
		if r := runCmd(t, []byte("piped in\n"), e.bin, a...); r.code != 0 {
			t.Fatalf("%s exec -i: %v", e.name, r)
		}
		if got := e.shell(t, name, "cat /srv/piped; stat -c %u:%g /srv/piped"); got != "piped in\n0:0" {
			t.Errorf("file written through exec -i, seen inside: %q", got)
		}

		// Into the stopped container, seen once it runs again.
		e.ok(t, "stop", "-t", "0", name)
		e.ok(t, "cp", in, name+":/srv/in")
		e.ok(t, "start", name)
		if got := e.shell(t, name, "cat /srv/in; stat -c %u:%g /srv/in; echo more >> /srv/in && echo appended"); got != "copied in\n0:0\nappended" {
			t.Errorf("copied into the stopped container, seen inside after start: %q, want its content, owned by root and writable", got)
		}
	})
}
