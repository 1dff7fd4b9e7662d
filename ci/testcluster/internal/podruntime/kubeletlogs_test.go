package podruntime

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"aiconform.dev/testcluster/internal/pki"
)

func TestContainerLogsServesTheContainersOutput(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server.log"), []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := &Runtime{pods: map[string]*podRun{"ns/p": {dir: dir, ctrs: map[string]*ctrState{"server": {name: "server"}}}}}
	for path, want := range map[string]string{
		"/containerLogs/ns/p/server":                         "one\ntwo\nthree\n",
		"/containerLogs/ns/p/server?tailLines=2":             "two\nthree\n",
		"/containerLogs/ns/p/server?tailLines=0":             "",
		"/containerLogs/ns/p/server?tailLines=9":             "one\ntwo\nthree\n",
		"/containerLogs/ns/p/server?limitBytes=5":            "one\nt",
		"/containerLogs/ns/p/server?tailLines=1&follow=true": "three\n",
	} {
		w := httptest.NewRecorder()
		rt.containerLogs(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusOK || w.Body.String() != want {
			t.Errorf("%s: HTTP %d %q, want %q", path, w.Code, w.Body, want)
		}
	}
	for _, path := range []string{"/containerLogs/ns/other/server", "/containerLogs/ns/p/sidecar", "/pods"} {
		w := httptest.NewRecorder()
		rt.containerLogs(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusNotFound {
			t.Errorf("%s: HTTP %d", path, w.Code)
		}
	}
}

func TestContainerLogEndpointOnlyAnswersClusterClients(t *testing.T) {
	certs, err := pki.Generate(t.TempDir(), net.ParseIP("10.96.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(certs.CACert)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c.log"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := &Runtime{pods: map[string]*podRun{"ns/p": {dir: dir, ctrs: map[string]*ctrState{"c": {name: "c"}}}}}
	done := make(chan struct{})
	defer close(done)
	port, err := rt.ServeContainerLogs(done, certs.ServingCert, certs.ServingKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	// Any loopback address reaches it, as the API server dials a node's address.
	url := fmt.Sprintf("https://127.1.0.2:%d/containerLogs/ns/p/c", port)
	// Like the API server without --kubelet-certificate-authority, the client
	// does not verify the serving certificate.
	client := func(cert ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, Certificates: cert}}}
	}
	if _, err := client().Get(url); err == nil {
		t.Fatal("a client without a certificate was answered")
	}
	admin, err := tls.LoadX509KeyPair(certs.AdminCert, certs.AdminKey)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client(admin).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "hello\n" {
		t.Fatalf("HTTP %d %q", resp.StatusCode, body)
	}
}
