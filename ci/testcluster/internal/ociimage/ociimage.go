// Package ociimage writes single-layer container images as OCI image-layout
// tar archives, without a container engine or base image: the files are
// taken from the host. The archive also carries a Docker-style manifest.json,
// so both `ctr images import` and `docker load` accept it. Output is
// deterministic: the same inputs give the same bytes and digests.
package ociimage

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// File is a regular file copied from the host into the image.
type File struct {
	Source string      // host path (symlinks are followed)
	Dest   string      // absolute path in the image
	Mode   os.FileMode // permission bits
}

// Image describes the image to write.
type Image struct {
	// Ref is the full reference, e.g. "registry.k8s.io/pause:3.10".
	Ref          string
	Arch         string // GOARCH-style: amd64, arm64
	Files        []File
	Dirs         map[string]os.FileMode // extra directories, e.g. "/tmp": 01777
	User         string
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	Labels       map[string]string
	ExposedPorts []string // e.g. "8080/tcp"
}

// epoch is the timestamp of every file and of the image: fixed so output is reproducible.
var epoch = time.Unix(0, 0).UTC()

const (
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Tag returns the tag part of a reference ("registry.k8s.io/pause:3.10" -> "3.10").
func Tag(ref string) string {
	last := ref[strings.LastIndex(ref, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return "latest"
}

// Validate checks the description before anything is written.
func (img *Image) Validate() error {
	if img.Ref == "" || strings.ContainsAny(img.Ref, " \t\n@") {
		return fmt.Errorf("invalid image reference %q", img.Ref)
	}
	if img.Arch == "" {
		return fmt.Errorf("no architecture")
	}
	seen := map[string]bool{}
	for _, f := range img.Files {
		if !path.IsAbs(f.Dest) || path.Clean(f.Dest) != f.Dest || f.Dest == "/" {
			return fmt.Errorf("destination %q must be a clean absolute file path", f.Dest)
		}
		if seen[f.Dest] {
			return fmt.Errorf("destination %q given twice", f.Dest)
		}
		seen[f.Dest] = true
		st, err := os.Stat(f.Source)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", f.Source)
		}
	}
	for d := range img.Dirs {
		if !path.IsAbs(d) || path.Clean(d) != d {
			return fmt.Errorf("directory %q must be a clean absolute path", d)
		}
	}
	return nil
}

// layerEntries lists every directory (parents included) and file, sorted by path.
func (img *Image) layerEntries() (dirs map[string]os.FileMode, names []string) {
	dirs = map[string]os.FileMode{}
	addParents := func(p string) {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := dirs[d]; !ok {
				dirs[d] = 0o755
			}
		}
	}
	for d, m := range img.Dirs {
		addParents(d)
		dirs[d] = m
	}
	for _, f := range img.Files {
		addParents(f.Dest)
	}
	for d := range dirs {
		names = append(names, d)
	}
	for _, f := range img.Files {
		names = append(names, f.Dest)
	}
	sort.Strings(names)
	return dirs, names
}

// writeLayer writes the layer tar to w.
func (img *Image) writeLayer(w io.Writer) error {
	dirs, names := img.layerEntries()
	files := map[string]File{}
	for _, f := range img.Files {
		files[f.Dest] = f
	}
	tw := tar.NewWriter(w)
	for _, name := range names {
		rel := strings.TrimPrefix(name, "/")
		if mode, ok := dirs[name]; ok {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: int64(mode.Perm() | mode&os.ModeSticky), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return err
			}
			continue
		}
		f := files[name]
		src, err := os.Open(f.Source)
		if err != nil {
			return err
		}
		st, err := src.Stat()
		if err != nil {
			src.Close()
			return err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: int64(f.Mode.Perm()), Size: st.Size(), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			src.Close()
			return err
		}
		_, err = io.Copy(tw, src)
		src.Close()
		if err != nil {
			return fmt.Errorf("copying %s: %w", f.Source, err)
		}
	}
	return tw.Close()
}

type counter struct {
	h hash.Hash
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Write writes the image archive to out (via a temp file next to it, renamed at the end).
func Write(img *Image, out string) error {
	if err := img.Validate(); err != nil {
		return err
	}
	// Pass 1: layer digest and size (the outer tar header needs the size first).
	c := &counter{h: sha256.New()}
	if err := img.writeLayer(c); err != nil {
		return err
	}
	layerDigest := "sha256:" + hex.EncodeToString(c.h.Sum(nil))
	layerSize := c.n

	cfg := map[string]interface{}{
		"created":      epoch.Format(time.RFC3339),
		"architecture": img.Arch,
		"os":           "linux",
		"config":       img.runConfig(),
		"rootfs":       map[string]interface{}{"type": "layers", "diff_ids": []string{layerDigest}},
		"history":      []map[string]string{{"created": epoch.Format(time.RFC3339), "created_by": "aiconform ociimage"}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	manifest := map[string]interface{}{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        descriptor{MediaType: mediaConfig, Digest: digestOf(cfgJSON), Size: int64(len(cfgJSON))},
		"layers":        []descriptor{{MediaType: mediaLayer, Digest: layerDigest, Size: layerSize}},
	}
	if len(img.Labels) > 0 {
		manifest["annotations"] = img.Labels
	}
	manJSON, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	index := map[string]interface{}{
		"schemaVersion": 2,
		"mediaType":     mediaIndex,
		"manifests": []descriptor{{
			MediaType: mediaManifest, Digest: digestOf(manJSON), Size: int64(len(manJSON)),
			Annotations: map[string]string{
				"io.containerd.image.name":          img.Ref,
				"org.opencontainers.image.ref.name": Tag(img.Ref),
			},
			Platform: &platform{Architecture: img.Arch, OS: "linux"},
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	blob := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	dockerManifest, err := json.Marshal([]map[string]interface{}{{
		"Config":   blob(digestOf(cfgJSON)),
		"RepoTags": []string{img.Ref},
		"Layers":   []string{blob(layerDigest)},
	}})
	if err != nil {
		return err
	}

	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	small := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blob(layerDigest), Mode: 0o644, Size: layerSize, ModTime: epoch}); err != nil {
		f.Close()
		return err
	}
	check := &counter{h: sha256.New()}
	if err := img.writeLayer(io.MultiWriter(tw, check)); err != nil {
		f.Close()
		return err
	}
	if got := "sha256:" + hex.EncodeToString(check.h.Sum(nil)); got != layerDigest {
		f.Close()
		return fmt.Errorf("an input file changed while the image was written")
	}
	for _, e := range []struct {
		name string
		data []byte
	}{
		{blob(digestOf(cfgJSON)), cfgJSON},
		{blob(digestOf(manJSON)), manJSON},
		{"index.json", indexJSON},
		{"manifest.json", dockerManifest},
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	} {
		if err := small(e.name, e.data); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

func (img *Image) runConfig() map[string]interface{} {
	rc := map[string]interface{}{}
	if img.User != "" {
		rc["User"] = img.User
	}
	if len(img.Entrypoint) > 0 {
		rc["Entrypoint"] = img.Entrypoint
	}
	if len(img.Cmd) > 0 {
		rc["Cmd"] = img.Cmd
	}
	if len(img.Env) > 0 {
		rc["Env"] = img.Env
	}
	if img.WorkingDir != "" {
		rc["WorkingDir"] = img.WorkingDir
	}
	if len(img.Labels) > 0 {
		rc["Labels"] = img.Labels
	}
	if len(img.ExposedPorts) > 0 {
		ports := map[string]struct{}{}
		for _, p := range img.ExposedPorts {
			ports[p] = struct{}{}
		}
		rc["ExposedPorts"] = ports
	}
	return rc
}
