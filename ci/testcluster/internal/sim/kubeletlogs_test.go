package sim

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
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
