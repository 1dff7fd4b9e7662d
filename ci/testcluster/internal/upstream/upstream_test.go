package upstream

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestImagesNeedTheirBinaries(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "bin", "prometheus", "prometheus"), "#!/bin/true\n")
	write(t, filepath.Join(dir, "images.txt"), "# built\nquay.io/prometheus/prometheus=prometheus/prometheus 3.16.0 65534\n")
	images, err := Images(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 1 || images[0].Repository != "quay.io/prometheus/prometheus" ||
		images[0].Binary != filepath.Join(dir, "bin", "prometheus", "prometheus") || images[0].Version != "3.16.0" ||
		images[0].User.UID != 65534 || images[0].User.GID != 65534 {
		t.Fatalf("images: %+v", images)
	}
	write(t, filepath.Join(dir, "images.txt"), "a=prometheus/prometheus 1\nb=missing 2\n")
	if _, err := Images(dir); err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing binary: %v", err)
	}
	for _, bad := range []string{"no-mapping\n", "a=../../bin/sh 1\n", "a=/bin/sh 1\n", "a=prometheus/prometheus 1 nobody\n"} {
		write(t, filepath.Join(dir, "images.txt"), bad)
		if _, err := Images(dir); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Fatalf("bad line %q: %v", bad, err)
		}
	}
	if _, err := Images(t.TempDir()); err == nil || !strings.Contains(err.Error(), "ci/upstream/build.sh") {
		t.Fatalf("no build: %v", err)
	}
}

func TestComponentsInPathOrder(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "manifests", "op", "90-aiconform", "a.yaml"), "")
	write(t, filepath.Join(dir, "manifests", "op", "00-crd", "b.yaml"), "")
	write(t, filepath.Join(dir, "manifests", "op", "00-crd", "README.md"), "")
	write(t, filepath.Join(dir, "manifests", "other", "x.yml"), "")
	all, err := Components(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "op" || all[1].Name != "other" {
		t.Fatalf("components: %+v", all)
	}
	if got := all[0].Manifests; len(got) != 2 || !strings.HasSuffix(got[0], "00-crd/b.yaml") || !strings.HasSuffix(got[1], "90-aiconform/a.yaml") {
		t.Fatalf("order: %v", got)
	}
	if _, err := Components(dir, []string{"kueue"}); err == nil || !strings.Contains(err.Error(), "built: op, other") {
		t.Fatalf("unknown component: %v", err)
	}
}

func TestDecodeFileSplitsDocuments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.yaml")
	write(t, path, "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a}\n---\n# only a comment\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\n")
	objs, err := decodeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetKind() != "ServiceAccount" || objs[1].GetName() != "b" {
		t.Fatalf("objects: %v", objs)
	}
	write(t, path, "metadata: {name: a}\n")
	if _, err := decodeFile(path); err == nil || !strings.Contains(err.Error(), "without apiVersion/kind") {
		t.Fatalf("kindless: %v", err)
	}
}
