package podruntime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// containerSpec is the filesystem and identity of one container process.
// Mount targets are paths inside the container.
type containerSpec struct {
	Rootfs   string
	Mounts   []mountSpec
	Cwd      string
	UID      uint32
	GID      uint32
	Groups   []uint32
	Hostname string
	ReadOnly bool
	NetNS    *netns // network namespace to enter; nil: the host's
}

type mountKind string

const (
	mountBind    mountKind = "bind"
	mountTmpfs   mountKind = "tmpfs"
	mountSymlink mountKind = "symlink"
	mountDir     mountKind = "dir"
)

type mountSpec struct {
	Kind     mountKind
	Source   string // host path (bind), link target (symlink), tmpfs options
	Target   string
	File     bool // bind a single file
	ReadOnly bool
	IfExists bool // skip when the target does not exist (files in /proc)
}

// startIsolated starts cmd as a container: on a dedicated OS thread it
// enters fresh mount and UTS namespaces, builds the container root on a
// tmpfs (bind mounts, /proc, /dev, volumes), and starts the process chrooted
// there, as the container's user, in a new PID namespace (its whole process
// tree dies with it) and with a parent-death signal. The thread stays locked
// until the process is gone (the parent-death signal follows the thread),
// then exits with its namespaces. It returns once the process started (or
// failed to); the result of cmd.Wait arrives on the returned channel.
func startIsolated(spec *containerSpec, cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread's namespaces differ from the
		// process's, so it must die with this goroutine.
		if err := setupContainer(spec); err != nil {
			started <- err
			return
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Chroot:     spec.Rootfs,
			Credential: &syscall.Credential{Uid: spec.UID, Gid: spec.GID, Groups: spec.Groups},
			Cloneflags: syscall.CLONE_NEWPID,
			Pdeathsig:  syscall.SIGKILL,
			Setpgid:    true,
		}
		cmd.Dir = spec.Cwd
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}

func setupContainer(spec *containerSpec) error {
	if spec.NetNS != nil {
		if err := unix.Setns(spec.NetNS.fd(), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("entering the pod's network namespace: %w", err)
		}
	}
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWUTS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	root := spec.Rootfs
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755,size=64m"); err != nil {
		return fmt.Errorf("mounting the container root: %w", err)
	}
	for _, m := range spec.Mounts {
		if err := applyMount(root, m); err != nil {
			return fmt.Errorf("mount %s: %w", m.Target, err)
		}
	}
	if spec.Cwd == "" {
		spec.Cwd = "/"
	}
	if err := os.MkdirAll(filepath.Join(root, spec.Cwd), 0o755); err != nil {
		return fmt.Errorf("working directory %s: %w", spec.Cwd, err)
	}
	if spec.ReadOnly {
		if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("read-only root: %w", err)
		}
	}
	if spec.Hostname != "" {
		_ = unix.Sethostname([]byte(spec.Hostname))
	}
	return nil
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
	case mountBind:
		if _, err := os.Lstat(target); err != nil && m.IfExists {
			return nil
		}
		if m.File {
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if _, err := os.Lstat(target); os.IsNotExist(err) {
				// Read-only: a process forked meanwhile by another container start
				// inherits the descriptor until it execs, and a writable one would
				// make the read-only remount of the root fail with EBUSY.
				f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o644)
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
