package cri

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
)

// critestBusybox is Debian's dynamically linked busybox, unpacked (not
// installed) by scripts/install-cri.sh critest. The test rootfs's static
// busybox is built with FEATURE_SH_STANDALONE: its shell runs an applet
// without exec, so masking /bin/ls (critest's MaskedPaths spec) cannot stop
// `sh -c ls`; this one's shell execs /bin/ls and gets EACCES.
var critestBusybox, _ = filepath.Abs(filepath.Join("..", "..", "_build", "tools", "busybox-dynamic", "bin", "busybox"))

// critestLibs are the shared objects critestBusybox loads, by their paths
// in the image, copied from the host (the package is Debian 12's, as the
// host is).
var critestLibs = []string{
	"lib/x86_64-linux-gnu/libc.so.6",
	"lib/x86_64-linux-gnu/libresolv.so.2",
	"lib64/ld-linux-x86-64.so.2",
}

// critestImages are the images critest pulls, made under the names it uses
// (the registry part dropped: the mirror serves every registry) from the
// test rootfs with critestBusybox for its busybox (applets as hard links,
// as the busybox image has them: a config that masks /bin/ls must not mask
// the shell) and the stand-ins of tests/cri/standins for the programs
// critest's specs run that busybox lacks (pgrep, ipcs -m, and nonewprivs's
// setuid program). The web server images run the rootfs's HTTP payload (as
// nginx) or busybox's httpd (as Apache); the user images carry the passwd
// and group entries critest's Dockerfiles add. Not made: the image pinned
// by digest, whose bytes only the original has; the spec that pulls it
// fails under both runtimes alike.
func critestImages(t *testing.T) map[string]imageSpec {
	t.Helper()
	standins := buildStandins(t)
	base := filepath.Join(workDir, "rootfs-critest.tar")
	if err := critestRootfs(base, critestBusybox, standins); err != nil {
		t.Fatal(err)
	}
	payload, err := os.ReadFile(filepath.Join(workDir, "rootfs", "usr", "local", "bin", "httpd"))
	if err != nil {
		t.Fatal(err)
	}
	nnp, err := os.ReadFile(filepath.Join(standins, "nnp"))
	if err != nil {
		t.Fatal(err)
	}
	www := imagetest.Layer(t, "", imagetest.Entry{Name: "www/", Type: '5'},
		imagetest.Entry{Name: "www/index.html", Body: "<h1>Welcome to nginx!</h1>\n"},
		imagetest.Entry{Name: "var/run/", Type: '5'},
		// nginx is the test rootfs's HTTP payload under nginx's name:
		// critest looks for a process named nginx.
		imagetest.Entry{Name: "usr/sbin/", Type: '5'},
		imagetest.Entry{Name: "usr/sbin/nginx", Body: string(payload), Mode: 0o755})
	users := imagetest.Layer(t, "",
		imagetest.Entry{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\ndefault-user:x:1000:1000::/home/default-user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		imagetest.Entry{Name: "etc/group", Body: "root:x:0:\nwww-data:x:33:\nusers:x:100:\ndefault-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\nnogroup:x:65534:\n"})
	// nonewprivs: the program setuid root, as its Dockerfile's chmod +s
	// leaves it; the specs run it as uid 1000.
	setuid := imagetest.Layer(t, "", imagetest.Entry{Name: "usr/local/bin/nnp", Body: string(nnp), Mode: 0o4755})
	web := func(cmd ...string) imageSpec { return imageSpec{cmd: cmd, base: base, extra: []v1.Layer{www}} }
	marker := func(n string) imageSpec {
		return imageSpec{cmd: []string{"/bin/sh"}, base: base, extra: []v1.Layer{imagetest.Layer(t, "", imagetest.Entry{Name: n, Body: n})}}
	}
	user := func(u string) imageSpec {
		return imageSpec{cmd: []string{"/bin/sh"}, user: u, base: base, extra: []v1.Layer{users}}
	}
	// nginx: its pid file, and "master process" in its command line when
	// it is its PID namespace's init (two extra arguments the payload
	// ignores).
	nginx := func(port string) imageSpec {
		return web("sh", "-c", "echo $$ > /var/run/nginx.pid; exec /usr/sbin/nginx -addr=0.0.0.0:"+port+" 'master process' nginx")
	}
	const staging = "k8s-staging-cri-tools/"
	imgs := map[string]imageSpec{
		"e2e-test-images/busybox:1.29-2":           {cmd: []string{"/bin/sh"}, base: base},
		"e2e-test-images/nginx:1.14-2":             nginx("80"),
		"e2e-test-images/httpd:2.4.39-4":           web("sh", "-c", "echo httpd; exec /bin/httpd -f -p 80 -h /www"),
		"e2e-test-images/nonewprivs:1.3":           {cmd: []string{"/usr/local/bin/nnp"}, base: base, extra: []v1.Layer{setuid}},
		staging + "hostnet-nginx-amd64":            nginx("12003"),
		"pause:3.9":                                {cmd: pauseCmd, base: base},
		staging + "test-image-latest":              marker("test-image-latest"),
		staging + "test-image-tag:test":            marker("test-image-tag"),
		staging + "test-image-tag:all":             marker("test-image-tag"),
		staging + "test-image-user-uid":            user("1002"),
		staging + "test-image-user-username":       user("www-data"),
		staging + "test-image-user-uid-group":      user("1003:users"),
		staging + "test-image-user-username-group": user("www-data:users"),
		staging + "test-image-predefined-group":    user("1000"),
	}
	for _, n := range []string{"1", "2", "3"} {
		imgs[staging+"test-image-"+n+":latest"] = marker("test-image-" + n)
		imgs[staging+"test-image-tags:"+n] = marker("test-image-tags")
	}
	return imgs
}

// buildStandins compiles tests/cri/standins (static, as the images have no
// libc for them) into a directory of workDir and returns it.
func buildStandins(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(workDir, "standins")
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", dir+"/", "./standins/...")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building tests/cri/standins: %v\n%s", err, out)
	}
	return dir
}

// critestRootfs writes the test rootfs with busybox (a dynamically linked
// one) for its busybox, the applets busybox has as hard links to it
// (those it lacks dropped), the libraries it loads, and the stand-ins in
// /usr/bin (all but nnp, which only the nonewprivs image has).
func critestRootfs(out, busybox, standins string) error {
	list, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list (run scripts/install-cri.sh critest): %w", busybox, err)
	}
	applets := map[string]bool{}
	for _, a := range strings.Fields(string(list)) {
		applets[a] = true
	}
	in, err := os.Open(rootfsTar)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(f)
	// Links go last: a hard link's target must come before it.
	var links []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := path.Clean(h.Name)
		if name == "bin/busybox" {
			if err := addFile(tw, "./bin/busybox", busybox, 0o755); err != nil {
				return err
			}
			continue
		}
		if h.Typeflag == tar.TypeSymlink && h.Linkname == "busybox" && path.Dir(name) == "bin" {
			if applets[path.Base(name)] {
				h.Typeflag, h.Linkname = tar.TypeLink, "./bin/busybox"
				links = append(links, h)
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	for _, d := range []string{"./lib/", "./lib/x86_64-linux-gnu/", "./lib64/", "./usr/bin/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return err
		}
	}
	for _, l := range critestLibs {
		if err := addFile(tw, "./"+l, "/"+l, 0o755); err != nil {
			return err
		}
	}
	for _, s := range []string{"pgrep", "ipcs"} {
		if err := addFile(tw, "./usr/bin/"+s, filepath.Join(standins, s), 0o755); err != nil {
			return err
		}
	}
	for _, h := range links {
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	return tw.Close()
}

// addFile writes the file at src (symlinks followed) as a regular file
// owned by root.
func addFile(tw *tar.Writer, name, src string, mode int64) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(b))}); err != nil {
		return err
	}
	_, err = tw.Write(b)
	return err
}

// shmSegments lists the host's System V shared memory segments: shmid to
// "size nattch".
func shmSegments() map[string]string {
	m := map[string]string{}
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// key shmid perms size cpid lpid nattch ...
		if fld := strings.Fields(sc.Text()); len(fld) > 6 && fld[1] != "shmid" {
			m[fld[1]] = fld[3] + " " + fld[6]
		}
	}
	return m
}

// removeCritestSegments removes the segments critest's HostIpc specs made
// on the host with `ipcmk -M 1048576` and never remove: those of that size,
// unattached, that were not there before (before is shmSegments' answer).
func removeCritestSegments(before map[string]string) {
	for id, v := range shmSegments() {
		if _, ok := before[id]; !ok && v == "1048576 0" {
			exec.Command("ipcrm", "-m", id).Run()
		}
	}
}
