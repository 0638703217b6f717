package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/kytsim"
)

// dockerfile is what TestImageRoot reads of the Dockerfile: the build stage's go build line
// and the final stage's instructions.
type dockerfile struct {
	build                             string // the RUN line with go build, continuations joined
	binary                            string // where the final stage copies the binary
	base, user, entrypoint, cmd, hchk string
}

func readDockerfile(t *testing.T, path string) dockerfile {
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var d dockerfile
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for cur := ""; sc.Scan(); {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		lines, cur = append(lines, cur+l), ""
	}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch instr {
		case "RUN":
			if strings.Contains(rest, "go build") {
				d.build = rest
			}
		case "FROM":
			d.base = rest
		case "COPY":
			if f := strings.Fields(rest); len(f) == 3 && strings.HasPrefix(f[0], "--from=") {
				d.binary = f[2]
			}
		case "USER":
			d.user = rest
		case "ENTRYPOINT":
			d.entrypoint = rest
		case "CMD":
			d.cmd = rest
		case "HEALTHCHECK":
			d.hchk = rest
		}
	}
	return d
}

// TestImageRoot proves what can be proved of the container image without a Docker engine: it
// builds the binary with the Dockerfile's own go build line, checks it is static, and runs
// `migrate`, `serve` and `healthcheck` in an empty root holding only what the image holds (the
// binary where the Dockerfile copies it, CA certificates, /etc/passwd and /etc/group naming the
// non-root user, /tmp, the keyset as a secret file) against the test PostgreSQL: as that
// non-root user through chroot when run as root (as CI runs), else as root of a user namespace.
// The image's base, its pull and Docker's HEALTHCHECK scheduling are not tested here.
func TestImageRoot(t *testing.T) {
	et.Slow(t, "builds the binary as the Dockerfile does and serves from an empty root")
	t.Parallel()
	d := readDockerfile(t, "../../Dockerfile")
	require.Contains(t, d.build, "CGO_ENABLED=0", "a static binary")
	require.Contains(t, d.build, " -o /out/enclave ", "the test puts the binary elsewhere by replacing this")
	require.Equal(t, "gcr.io/distroless/static-debian12:nonroot", d.base, "the root built below holds what this base holds")
	require.Equal(t, "nonroot:nonroot", d.user)
	require.Equal(t, `["enclave"]`, d.entrypoint)
	require.Equal(t, `["serve"]`, d.cmd)
	require.Contains(t, d.hchk, `CMD ["enclave", "healthcheck"]`)
	require.Equal(t, "/usr/local/bin/enclave", d.binary)

	// The build, as the Dockerfile runs it, from the repository's root.
	out := t.TempDir()
	build := exec.Command("sh", "-c", strings.Replace(d.build, " -o /out/enclave ", " -o "+filepath.Join(out, "enclave")+" ", 1))
	build.Dir = "../.."
	build.Env = append(os.Environ(), "VERSION=image-test")
	b, err := build.CombinedOutput()
	require.NoError(t, err, "%s", b)
	f, err := elf.Open(filepath.Join(out, "enclave"))
	require.NoError(t, err)
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "the binary is static: it needs no loader, as the image has none")
		require.NotEqual(t, elf.PT_DYNAMIC, p.Type, "the binary is static: it links no shared library")
	}
	f.Close()

	// The root: only what the image holds.
	const uid, gid = 65532, 65532 // distroless's nonroot
	root := t.TempDir()
	for _, dir := range []string{"usr/local/bin", "etc/ssl/certs", "run/secrets"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, dir), 0o755))
	}
	require.NoError(t, os.Mkdir(filepath.Join(root, "tmp"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(root, "tmp"), 0o1777))
	bin, err := os.ReadFile(filepath.Join(out, "enclave"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, d.binary), bin, 0o755))
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	require.NoError(t, err, "the host's CA bundle stands in for the base image's")
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), certs, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(
		"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"), 0o644))
	keyset := filepath.Join(root, "run/secrets/data_keyset")
	require.NoError(t, os.WriteFile(keyset, []byte(et.Keyset(t)), 0o600))

	// How to enter it: chroot and the non-root user as root; a user namespace otherwise.
	attr := &syscall.SysProcAttr{Chroot: root}
	asRoot := os.Geteuid() == 0
	if asRoot {
		require.NoError(t, os.Chown(keyset, uid, gid), "the secret belongs to the image's user, as a mounted secret would")
		attr.Credential = &syscall.Credential{Uid: uid, Gid: gid}
	} else {
		attr.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	}
	sim := kytsim.NewServer(kytsim.DefaultOptions("image-kyt-key"))
	defer sim.Close()
	addr := freeAddr(t)
	env := []string{
		"DATABASE_URL=" + emptyDatabase(t), "ENCLAVE_VASP_ID=111", "ENCLAVE_API_KEYS=image-api-key", "ENCLAVE_LISTEN_ADDR=" + addr,
		"CHAINALYSIS_KYT_API_URL=" + sim.URL + "/api/kyt", "CHAINALYSIS_KYT_API_KEY=image-kyt-key", "ENCLAVE_CALLBACK_URL=http://127.0.0.1:1/callbacks",
		"ENCLAVE_CALLBACK_SECRET=whsec_" + base64.StdEncoding.EncodeToString([]byte("image-callback-secret-0123456789")),
		"ENCLAVE_DATA_KEYSET_FILE=/run/secrets/data_keyset", "ENCLAVE_STRICT_ENV=1",
	}
	inRoot := func(args ...string) *exec.Cmd {
		c := exec.Command(d.binary, args...)
		c.Path, c.Dir, c.Env, c.SysProcAttr = d.binary, "/", env, attr
		return c
	}
	if b, err := inRoot("migrate").CombinedOutput(); err != nil {
		if !asRoot {
			t.Fatalf("cannot enter the empty root: not root, and a user namespace failed (%v, %s): run as root, as CI does, "+
				"or allow unprivileged user namespaces", err, b)
		}
		t.Fatalf("migrate in the image's root: %v\n%s", err, b)
	}

	var logs et.SyncBuffer
	serve := inRoot("serve")
	serve.Stdout, serve.Stderr = &logs, &logs
	require.NoError(t, serve.Start())
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() {
		serve.Process.Kill() //nolint:errcheck // already gone when the test passed
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited in the image's root: %v\n%s", err, logs.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "serve in the image's root was not ready within 60s:\n%s", logs.String())
		time.Sleep(200 * time.Millisecond)
	}
	b, err = inRoot("healthcheck").CombinedOutput()
	require.NoError(t, err, "the image's HEALTHCHECK: %s", b)
	require.Contains(t, string(b), "ready")
	b, err = inRoot("version").CombinedOutput()
	require.NoError(t, err)
	require.Equal(t, "enclave image-test\n", string(b), "the version passed as the Dockerfile's VERSION")
	require.NotContains(t, logs.String(), "readable by every user", "the secret file is the user's own, 0600")

	require.NoError(t, serve.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "serve stops cleanly on SIGTERM, as `docker stop` sends:\n%s", logs.String())
	case <-time.After(40 * time.Second):
		t.Fatalf("serve did not stop within 40s of SIGTERM:\n%s", logs.String())
	}
}
