package sim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// containerInitArg is argv[1] of the helper process that sets up a
// container's filesystem: the cluster binary re-executes itself with it in
// fresh mount, PID and UTS namespaces (see ContainerInit).
const containerInitArg = "__sim-container-init"

// containerSpec is what the helper needs to build a container and exec its
// process. Mount targets are paths inside the container.
type containerSpec struct {
	Rootfs   string      `json:"rootfs"`
	Mounts   []mountSpec `json:"mounts"`
	Binary   string      `json:"binary"` // path inside the container
	Argv     []string    `json:"argv"`
	Env      []string    `json:"env"`
	Cwd      string      `json:"cwd"`
	UID      uint32      `json:"uid"`
	GID      uint32      `json:"gid"`
	Groups   []int       `json:"groups,omitempty"`
	Hostname string      `json:"hostname"`
	ReadOnly bool        `json:"readOnlyRootfs,omitempty"`
}

type mountKind string

const (
	mountBind    mountKind = "bind"
	mountTmpfs   mountKind = "tmpfs"
	mountProc    mountKind = "proc"
	mountSymlink mountKind = "symlink"
	mountDir     mountKind = "dir"
)

type mountSpec struct {
	Kind     mountKind `json:"kind"`
	Source   string    `json:"source,omitempty"` // host path (bind), link target (symlink), tmpfs options
	Target   string    `json:"target"`
	File     bool      `json:"file,omitempty"`     // bind a single file
	IfExists bool      `json:"ifExists,omitempty"` // skip when the target does not exist (files in /proc)
	ReadOnly bool      `json:"readOnly,omitempty"`
}

// IsContainerInit reports whether this process is the container helper.
func IsContainerInit(args []string) bool {
	return len(args) == 3 && args[1] == containerInitArg
}

// ContainerInit runs in the helper process: it builds the container's root
// on a tmpfs (bind mounts, /proc, /dev, volumes), chroots into it, drops to
// the container's user and execs the container process, which becomes PID 1
// of the namespace (so its whole process tree dies with it). Errors before
// the exec are written to fd 3 for the runtime to report as StartError.
func ContainerInit(args []string) int {
	status := os.NewFile(3, "status")
	fail := func(format string, a ...interface{}) int {
		fmt.Fprintf(status, format, a...)
		return 1
	}
	data, err := os.ReadFile(args[2])
	if err != nil {
		return fail("reading container spec: %v", err)
	}
	var spec containerSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fail("parsing container spec: %v", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("making mounts private: %v", err)
	}
	root := spec.Rootfs
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755,size=64m"); err != nil {
		return fail("mounting the container root: %v", err)
	}
	for _, m := range spec.Mounts {
		if err := applyMount(root, m); err != nil {
			return fail("mount %s: %v", m.Target, err)
		}
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.MkdirAll(filepath.Join(root, cwd), 0o755); err != nil {
		return fail("working directory %s: %v", cwd, err)
	}
	if spec.ReadOnly {
		if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fail("read-only root: %v", err)
		}
	}
	if err := unix.Chroot(root); err != nil {
		return fail("chroot: %v", err)
	}
	if err := unix.Chdir(cwd); err != nil {
		return fail("chdir %s: %v", cwd, err)
	}
	if spec.Hostname != "" {
		_ = unix.Sethostname([]byte(spec.Hostname))
	}
	if err := unix.Setgroups(spec.Groups); err != nil {
		return fail("setgroups: %v", err)
	}
	if err := unix.Setresgid(int(spec.GID), int(spec.GID), int(spec.GID)); err != nil {
		return fail("setgid %d: %v", spec.GID, err)
	}
	if err := unix.Setresuid(int(spec.UID), int(spec.UID), int(spec.UID)); err != nil {
		return fail("setuid %d: %v", spec.UID, err)
	}
	// Changing credentials clears the parent-death signal; set it again so
	// the process dies with the cluster.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	// The status pipe closes on a successful exec: the runtime sees EOF.
	unix.CloseOnExec(3)
	err = unix.Exec(spec.Binary, spec.Argv, spec.Env)
	return fail("exec %s: %v", spec.Binary, err)
}

func applyMount(root string, m mountSpec) error {
	target := filepath.Join(root, m.Target)
	switch m.Kind {
	case mountSymlink:
		return os.Symlink(m.Source, target)
	case mountDir:
		return os.MkdirAll(target, 0o755)
	case mountTmpfs:
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		return unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, m.Source)
	case mountProc:
		if err := os.MkdirAll(target, 0o555); err != nil {
			return err
		}
		return unix.Mount("proc", target, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	case mountBind:
		if _, err := os.Lstat(target); err != nil && m.IfExists {
			return nil
		}
		if m.File {
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if _, err := os.Lstat(target); os.IsNotExist(err) {
				f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
				if err != nil {
					return err
				}
				f.Close()
			}
		} else if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", m.Source, err)
		}
		if m.ReadOnly {
			return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID, "")
		}
		return nil
	}
	return fmt.Errorf("unknown mount kind %q", m.Kind)
}
