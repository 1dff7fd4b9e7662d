// Command ociimage writes a single-layer container image, built from host
// files, as an OCI archive that `ctr images import` and `docker load` accept.
// No container engine or base image is needed.
//
//	ociimage --ref registry.k8s.io/pause:3.10 --out pause.tar \
//	  --file /path/to/pause:/pause:0755 --entrypoint /pause --user 65535:65535
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"aiconform.dev/testcluster/internal/ociimage"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "ociimage: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("ociimage", flag.ContinueOnError)
	var files, dirs, labels, env, entry, cmd, ports list
	ref := fs.String("ref", "", "image reference, e.g. ghcr.io/aiconform/aiconform:v0.1.0 (required)")
	out := fs.String("out", "", "output archive path (required)")
	arch := fs.String("arch", runtime.GOARCH, "image architecture (GOARCH name)")
	user := fs.String("user", "", "user (and group) the image runs as, e.g. 65532:65532")
	workdir := fs.String("workdir", "", "working directory")
	fs.Var(&files, "file", "SRC:DEST[:MODE] host file copied to DEST (octal MODE, default 0755); repeatable")
	fs.Var(&dirs, "dir", "DEST[:MODE] directory to create (default 0755); repeatable")
	fs.Var(&labels, "label", "KEY=VALUE image label (also a manifest annotation); repeatable")
	fs.Var(&env, "env", "KEY=VALUE environment variable; repeatable")
	fs.Var(&entry, "entrypoint", "entrypoint argument; repeat for each word")
	fs.Var(&cmd, "cmd", "default command argument; repeat for each word")
	fs.Var(&ports, "expose", "exposed port, e.g. 8080/tcp; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ref == "" || *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("usage: ociimage --ref REF --out FILE --file SRC:DEST[:MODE] ... (see -h)")
	}
	img := &ociimage.Image{Ref: *ref, Arch: *arch, User: *user, WorkingDir: *workdir,
		Entrypoint: entry, Cmd: cmd, Env: env, ExposedPorts: ports,
		Labels: map[string]string{}, Dirs: map[string]os.FileMode{}}
	for _, f := range files {
		parts := strings.Split(f, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return fmt.Errorf("--file %q: want SRC:DEST[:MODE]", f)
		}
		mode := os.FileMode(0o755)
		if len(parts) == 3 {
			m, err := strconv.ParseUint(parts[2], 8, 32)
			if err != nil {
				return fmt.Errorf("--file %q: mode must be octal", f)
			}
			mode = os.FileMode(m)
		}
		img.Files = append(img.Files, ociimage.File{Source: parts[0], Dest: parts[1], Mode: mode})
	}
	for _, d := range dirs {
		p, m, _ := strings.Cut(d, ":")
		mode := uint64(0o755)
		if m != "" {
			var err error
			if mode, err = strconv.ParseUint(m, 8, 32); err != nil {
				return fmt.Errorf("--dir %q: mode must be octal", d)
			}
		}
		fm := os.FileMode(mode).Perm()
		if mode&0o1000 != 0 {
			fm |= os.ModeSticky
		}
		img.Dirs[p] = fm
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("--label %q: want KEY=VALUE", l)
		}
		img.Labels[k] = v
	}
	return ociimage.Write(img, *out)
}
