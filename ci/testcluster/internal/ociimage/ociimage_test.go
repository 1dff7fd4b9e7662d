package ociimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func readTar(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}

func TestWriteIsDeterministicAndLoadable(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	img := &Image{Ref: "registry.k8s.io/pause:3.10", Arch: "amd64", User: "65535:65535",
		Entrypoint: []string{"/pause"}, Files: []File{{Source: bin, Dest: "/usr/bin/pause", Mode: 0o755}},
		Labels: map[string]string{"org.opencontainers.image.version": "3.10"}}
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	if err := Write(img, a); err != nil {
		t.Fatal(err)
	}
	if err := Write(img, b); err != nil {
		t.Fatal(err)
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Fatal("same inputs gave different archives")
	}
	files := readTar(t, da)
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	m := index.Manifests[0]
	if m.Annotations["io.containerd.image.name"] != img.Ref || m.Annotations["org.opencontainers.image.ref.name"] != "3.10" {
		t.Fatalf("annotations: %v", m.Annotations)
	}
	var docker []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &docker); err != nil || docker[0].RepoTags[0] != img.Ref {
		t.Fatalf("manifest.json: %v %s", err, files["manifest.json"])
	}
	if _, ok := files[docker[0].Config]; !ok {
		t.Fatalf("config blob %s missing", docker[0].Config)
	}
	layer := files[docker[0].Layers[0]]
	tr := tar.NewReader(bytes.NewReader(layer))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "usr/bin/pause" && h.Mode != 0o755 {
			t.Fatalf("mode %o", h.Mode)
		}
	}
	if want := []string{"usr/", "usr/bin/", "usr/bin/pause"}; !equal(names, want) {
		t.Fatalf("layer entries %v, want %v", names, want)
	}
}

func TestValidate(t *testing.T) {
	for _, img := range []*Image{
		{Ref: "", Arch: "amd64"},
		{Ref: "x:1", Arch: ""},
		{Ref: "x:1", Arch: "amd64", Files: []File{{Source: "/nonexistent", Dest: "/a"}}},
		{Ref: "x:1", Arch: "amd64", Files: []File{{Source: "/etc/hostname", Dest: "rel"}}},
	} {
		if img.Validate() == nil {
			t.Errorf("%+v: want an error", img)
		}
	}
	if Tag("localhost:5000/x") != "latest" || Tag("a/b:c") != "c" {
		t.Error("Tag")
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
