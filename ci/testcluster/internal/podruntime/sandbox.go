package podruntime

import (
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"golang.org/x/sys/unix"
)

// The process runtime's sandboxed runtime handler, offered as RuntimeClass
// SandboxRuntimeClass. A container of a pod of that class runs as PID 1 of
// its own PID namespace with a procfs of that namespace (not the host's
// /proc: it lists only the pod's own processes), in a network namespace of
// its own (only lo, and eth0 with --pod-netns), with the rootfs of every
// process-runtime container (no host paths, a /dev without mem or kmem), and
// with a kernel identity of its own: /proc/version and
// /proc/sys/kernel/osrelease as gVisor's runsc shows them, and a boot id of
// the sandbox. It is not a separate kernel: uname(2) still returns the host
// kernel's release, and the host's kernel runs the process.
const (
	SandboxRuntimeClass = "gvisor"
	SandboxHandler      = "runsc"
	// SandboxInitArg, as the first argument of this binary, runs SandboxInit.
	SandboxInitArg = "__sandbox-init"
	// sandboxDir holds, inside the container until the init detaches it,
	// this binary (the init) and the identity files laid over /proc.
	sandboxDir = "/.sandbox"
	// sandboxKernelRelease and sandboxKernelVersion are what runsc (gVisor,
	// built from gvisor.dev/gvisor) reports for its kernel on this machine.
	sandboxKernelRelease = "4.19.0-gvisor"
	sandboxKernelVersion = "Linux version " + sandboxKernelRelease + " #1 SMP Sun Jan 10 15:06:54 PST 2016"
)

// sandboxSetup is the sandbox of one pod.
type sandboxSetup struct {
	// identity is the host dir of the files laid over the container's /proc
	// (relative paths under /proc); empty under the leaky fault.
	identity string
	// init is this binary, run as the container's PID 1 before the program.
	init string
}

// SandboxRuntimeClassObject is the RuntimeClass of the sandboxed handler.
func SandboxRuntimeClassObject() *nodev1.RuntimeClass {
	return &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: SandboxRuntimeClass,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "aiconform-testcluster"}},
		Handler: SandboxHandler,
	}
}

// SandboxAvailable reports whether the runtime can run sandboxed pods (it
// needs mount and PID namespaces, so root), or why not.
func (rt *Runtime) SandboxAvailable() error {
	if !rt.isolated {
		return fmt.Errorf("not running as root (sandboxed containers need mount, PID and network namespaces)")
	}
	return nil
}

// ordinaryHandlers run containers like the default runtime: runc, and the
// NVIDIA container runtime's handlers that GPU nodes have (the GPU operator's
// RuntimeClasses name them).
var ordinaryHandlers = map[string]bool{"": true, "runc": true, "nvidia": true, "nvidia-cdi": true, "nvidia-legacy": true}

// podSandboxed resolves the pod's RuntimeClass to a handler of this runtime:
// false for none or an ordinary handler, true for SandboxHandler, an error
// for a handler the node does not have (the kubelet fails such a pod too).
func (rt *Runtime) podSandboxed(ctx context.Context, pod *corev1.Pod) (bool, error) {
	name := pod.Spec.RuntimeClassName
	if name == nil || *name == "" {
		return false, nil
	}
	rc, err := rt.client.NodeV1().RuntimeClasses().Get(ctx, *name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("RuntimeClass %q: %w", *name, err)
	}
	switch {
	case ordinaryHandlers[rc.Handler]:
		return false, nil
	case rc.Handler == SandboxHandler:
		if !rt.isolated {
			return false, fmt.Errorf("RuntimeClass %q: handler %q needs a runtime with namespaces (run the test cluster as root)", *name, rc.Handler)
		}
		return true, nil
	}
	return false, fmt.Errorf("RuntimeClass %q: no runtime handler %q on this node (handlers: runc, nvidia, nvidia-cdi, nvidia-legacy, %s)", *name, rc.Handler, SandboxHandler)
}

// sandboxIdentityFiles are the files laid over a sandboxed container's
// /proc: the sandbox kernel's version and release, a fresh boot id, and the
// node's CPUs (the hardware is the node's).
func sandboxIdentityFiles(bootID, cpuinfo string) map[string]string {
	files := map[string]string{
		"version":                   sandboxKernelVersion + "\n",
		"sys/kernel/osrelease":      sandboxKernelRelease + "\n",
		"sys/kernel/random/boot_id": bootID + "\n",
	}
	if cpuinfo != "" {
		files["cpuinfo"] = cpuinfo
	}
	return files
}

// newBootID is a random UUID, as /proc/sys/kernel/random/boot_id shows one.
func newBootID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// prepareSandbox writes the pod's identity files (unless leaky) under dir.
func (rt *Runtime) prepareSandbox(dir, nodeRoot string) (*sandboxSetup, error) {
	if rt.opts.SandboxLeaky {
		return &sandboxSetup{}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sandbox init: %w", err)
	}
	bootID, err := newBootID()
	if err != nil {
		return nil, err
	}
	cpuinfo, _ := os.ReadFile(filepath.Join(nodeRoot, "proc", "cpuinfo"))
	identity := filepath.Join(dir, "sandbox", "proc")
	if err := writeNodeTree(identity, sandboxIdentityFiles(bootID, string(cpuinfo))); err != nil {
		return nil, err
	}
	return &sandboxSetup{identity: identity, init: exe}, nil
}

// sandboxed reports whether containers of the pod start through the
// sandbox init (a sandbox that is not leaky).
func (s *sandboxSetup) sandboxed() bool { return s != nil && s.identity != "" }

// sandboxMounts replaces the host /proc of a container with an empty mount
// point (the init mounts the sandbox's own) and brings in the init and the
// identity files.
func sandboxMounts(ms []mountSpec, sb *sandboxSetup) []mountSpec {
	out := make([]mountSpec, 0, len(ms)+3)
	for _, m := range ms {
		if m.Target == "/proc" || strings.HasPrefix(m.Target, "/proc/") {
			continue
		}
		out = append(out, m)
	}
	return append(out,
		mountSpec{Kind: mountDir, Target: "/proc"},
		mountSpec{Kind: mountBind, Source: sb.init, Target: path.Join(sandboxDir, "init"), File: true, ReadOnly: true},
		mountSpec{Kind: mountBind, Source: sb.identity, Target: path.Join(sandboxDir, "proc"), ReadOnly: true},
	)
}

// sandboxArgv is the command line of the sandbox init that becomes the
// container's program (binary, argv) as uid:gid with groups.
func sandboxArgv(binary string, argv []string, uid, gid uint32, groups []uint32) []string {
	gs := make([]string, len(groups))
	for i, g := range groups {
		gs[i] = strconv.FormatUint(uint64(g), 10)
	}
	out := []string{path.Join(sandboxDir, "init"), SandboxInitArg,
		strconv.FormatUint(uint64(uid), 10), strconv.FormatUint(uint64(gid), 10), strings.Join(gs, ","), binary}
	return append(out, argv...)
}

// sandboxInitArgs parses what sandboxArgv wrote after SandboxInitArg.
func sandboxInitArgs(args []string) (uid, gid int, groups []int, binary string, argv []string, err error) {
	if len(args) < 5 {
		return 0, 0, nil, "", nil, fmt.Errorf("want UID GID GROUPS BINARY ARGV0 [ARGS...], got %q", args)
	}
	if uid, err = strconv.Atoi(args[0]); err != nil {
		return 0, 0, nil, "", nil, fmt.Errorf("uid: %w", err)
	}
	if gid, err = strconv.Atoi(args[1]); err != nil {
		return 0, 0, nil, "", nil, fmt.Errorf("gid: %w", err)
	}
	for _, g := range strings.Split(args[2], ",") {
		if g == "" {
			continue
		}
		n, err := strconv.Atoi(g)
		if err != nil {
			return 0, 0, nil, "", nil, fmt.Errorf("groups: %w", err)
		}
		groups = append(groups, n)
	}
	return uid, gid, groups, args[3], args[4:], nil
}

// SandboxInit runs as PID 1 of a sandboxed container's PID namespace, root,
// chrooted into the container: it mounts the namespace's procfs on /proc,
// binds the identity files over it read-only, detaches sandboxDir, takes the
// container's user and executes its program, which keeps PID 1.
func SandboxInit(args []string) int {
	uid, gid, groups, binary, argv, err := sandboxInitArgs(args)
	if err == nil {
		err = sandboxInit(uid, gid, groups)
	}
	if err == nil {
		err = syscall.Exec(binary, argv, os.Environ())
	}
	fmt.Fprintf(os.Stderr, "sandbox init: %v\n", err)
	return 128
}

func sandboxInit(uid, gid int, groups []int) error {
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	src := path.Join(sandboxDir, "proc")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join("/proc", rel)
		if err := unix.Mount(p, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", target, err)
		}
		return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	})
	if err != nil {
		return err
	}
	for _, m := range []string{src, path.Join(sandboxDir, "init")} {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detaching %s: %w", m, err)
		}
		_ = os.Remove(m) // the mount point; kept on a read-only root
	}
	_ = os.Remove(sandboxDir)
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	return nil
}
