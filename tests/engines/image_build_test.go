package engines

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// builtDockerfile is built by dockerd's own builder from the test rootfs
// imported as bwtest:1 (nothing can be pulled): a COPY, a RUN (through
// dockerd's default runtime), and every config field `bulwark run IMAGE
// --` applies.
const builtDockerfile = `FROM bwtest:1
COPY greeting /app/greeting
RUN mkdir -p /data && echo from-run > /data/marker && chmod 0644 /data/marker
ENV GREETING=hello-from-docker
WORKDIR /app
USER 1000:1000
ENTRYPOINT ["sh", "-c"]
CMD ["echo $GREETING; pwd; id -u; id -g; cat greeting /data/marker"]
`

// builtWant is what the image's own Entrypoint and Cmd print under bulwark.
const builtWant = "hello-from-docker\n/app\n1000\n1000\nfrom-copy\nfrom-run\n"

// loadedRef is the reference `bulwark load` printed for the one image it
// loaded: its name, or its ID when the archive named none.
func loadedRef(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(l, "Loaded image: "); ok {
			return n
		}
		if id, ok := strings.CutPrefix(l, "Loaded image ID: "); ok {
			return id
		}
	}
	t.Fatalf("bulwark load printed no image: %q", out)
	return ""
}

// runLoaded loads what the shell pipeline in load prints (`... | bulwark
// load`) or the file -i names into a data root of its own, then runs the
// image's own command with `bulwark run IMAGE --`.
func runLoaded(t *testing.T, load string, args ...string) {
	t.Helper()
	dr, root := t.TempDir(), t.TempDir()
	// The container's root, an unprivileged host uid, finds its rootfs
	// under the data root: as under /var/lib/bulwark, it must traverse.
	for _, d := range []string{dr, filepath.Dir(dr)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var r result
	if load != "" {
		r = runCmd(t, nil, "sh", "-c", load+" | "+bulwarkBin+" --data-root "+dr+" load -q")
	} else {
		r = runCmd(t, nil, bulwarkBin, append([]string{"--data-root", dr, "load", "-q"}, args...)...)
	}
	if r.code != 0 {
		t.Fatalf("bulwark load: %v", r)
	}
	ref := loadedRef(t, r.stdout)
	r = runCmd(t, nil, bulwarkBin, "--data-root", dr, "--root", root, "run", ref, "--")
	if r.code != 0 || r.stdout != builtWant {
		t.Fatalf("bulwark run %s --: %v\nwant stdout %q", ref, r, builtWant)
	}
	// Arguments replace the Cmd and keep the Entrypoint (sh -c), as with
	// docker run.
	r = runCmd(t, nil, bulwarkBin, "--data-root", dr, "--root", root, "run", ref, "--", "id -u; touch /data/x")
	if r.code == 0 || !strings.HasPrefix(r.stdout, "1000\n") {
		t.Errorf("bulwark run %s -- (as the image's user, on a read-only rootfs): %v", ref, r)
	}
}

// TestImageBuiltByDockerRunsInBulwark builds an image with `docker build`
// from a Dockerfile and moves it into bulwark the ways a person would:
// `docker save IMAGE | bulwark load`; through Podman, `podman save` as a
// docker-archive and as an OCI archive; and `skopeo copy` to an OCI
// layout directory. Each runs its Entrypoint and Cmd with its Env,
// WorkingDir and User applied.
func TestImageBuiltByDockerRunsInBulwark(t *testing.T) {
	d := startDocker(t)
	ctx := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(builtDockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, "greeting"), []byte("from-copy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The legacy builder: Debian's docker.io has no buildx.
	t.Setenv("DOCKER_BUILDKIT", "0")
	d.ok(t, "build", "--network", "none", "-t", "bwbuilt:1", ctx)
	t.Cleanup(func() { d.do(t, "rmi", "bwbuilt:1") })
	docker := strings.Join(append([]string{dockerBin}, d.global...), " ")

	t.Run("docker save | bulwark load", func(t *testing.T) {
		runLoaded(t, docker+" save bwbuilt:1")
	})

	archive := filepath.Join(t.TempDir(), "docker.tar")
	d.ok(t, "save", "-o", archive, "bwbuilt:1")
	t.Run("podman", func(t *testing.T) {
		p := startPodman(t)
		out := p.ok(t, "load", "-i", archive)
		_, name, ok := strings.Cut(strings.TrimSpace(out), "Loaded image: ")
		if !ok {
			_, name, ok = strings.Cut(strings.TrimSpace(out), "Loaded image(s): ")
		}
		if !ok || name == "" {
			t.Fatalf("podman load printed no name: %q", out)
		}
		t.Cleanup(func() { p.do(t, "rmi", "-f", name) })
		for _, format := range []string{"docker-archive", "oci-archive"} {
			t.Run("podman save --format "+format, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), format+".tar")
				p.ok(t, "save", "--format", format, "-o", out, name)
				runLoaded(t, "", "-i", out)
			})
		}
	})
	t.Run("skopeo copy to an OCI layout", func(t *testing.T) {
		if _, err := exec.LookPath("skopeo"); err != nil {
			t.Skip("skopeo not installed: run scripts/install-engines.sh")
		}
		dir := filepath.Join(t.TempDir(), "layout")
		if r := runCmd(t, nil, "skopeo", "copy", "docker-archive:"+archive, "oci:"+dir+":bwbuilt"); r.code != 0 {
			t.Fatalf("skopeo copy: %v", r)
		}
		runLoaded(t, "", "-i", dir)
	})
}
