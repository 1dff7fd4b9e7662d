// Package realnode runs one real Kubernetes node beside the simulated ones: a
// kubelet built from k8s.io/kubernetes/cmd/kubelet and a containerd instance
// of its own (own root, state, socket and config; runc; a CNI bridge with
// host-local IPAM; a locally built pause image). Pods scheduled there really
// run, so logs, exec, probes and pod IPs work through the API server.
//
// Everything lives under /var/lib/aiconform-realnode/<pid>, one bridge
// interface and one iptables nat chain (the kubernetes Service for the
// node's pods). Stop removes all of it (pods via CRI, processes, mounts, the
// chain, the bridge); a run that crashed is cleaned up by the next Start.
package realnode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// BaseDir holds the state of every real node run, one directory per owner pid.
const BaseDir = "/var/lib/aiconform-realnode"

// PauseImage is the sandbox image reference the runtime is configured with.
const PauseImage = "registry.k8s.io/pause:3.10"

// Label and taint put on the real node. The taint keeps workloads that do not
// ask for the real node (and would need images it does not have) off it.
const (
	LabelRealNode = "testcluster.aiconform.dev/real-node"
	TaintKey      = "testcluster.aiconform.dev/real-node"
)

// CNIDir is where Debian's containernetworking-plugins install the plugins.
var CNIDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// Options configure the real node.
type Options struct {
	Name           string   // node name
	KubeletBin     string   // kubelet binary
	PauseArchive   string   // OCI archive of PauseImage
	ImageArchives  []string // more OCI archives imported into the runtime
	Server         string   // kube-apiserver URL
	CACert, CAKey  string   // cluster CA (the kubelet's client cert is signed with it)
	LogDir         string   // kubelet.log and containerd.log go here
	Progress       func(format string, args ...interface{})
	StartupTimeout time.Duration
	// ServiceAddr is the kubernetes Service (ClusterIP:port) and ServeAPI
	// serves the API server on another address (the bridge gateway),
	// returning its port and how to stop; with both, the node's pods reach
	// the API server through the Service (see setupService).
	ServiceAddr string
	ServeAPI    func(ip string) (port int, stop func(), err error)
}

// Check returns nil when this machine can run the real node, or the reason it cannot.
func Check(o Options) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not running as root (the kubelet and containerd need root)")
	}
	if _, err := os.Stat(o.KubeletBin); err != nil {
		return fmt.Errorf("no kubelet binary at %s (ci/testcluster/build.sh builds it)", o.KubeletBin)
	}
	if _, err := os.Stat(o.PauseArchive); err != nil {
		return fmt.Errorf("no pause image archive at %s (ci/testcluster/build.sh builds it)", o.PauseArchive)
	}
	for _, a := range o.ImageArchives {
		if _, err := os.Stat(a); err != nil {
			return fmt.Errorf("image archive %s: %v", a, err)
		}
	}
	var missing []string
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "ip", "iptables"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if _, err := cniBinDir(); err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s (Debian packages containerd, runc, containernetworking-plugins, iproute2, iptables; ci/install-deps.sh installs them)", strings.Join(missing, ", "))
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		return fmt.Errorf("no cgroup filesystem at /sys/fs/cgroup")
	}
	return nil
}

func cniBinDir() (string, error) {
	for _, d := range CNIDirs {
		ok := true
		for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
			if _, err := os.Stat(filepath.Join(d, p)); err != nil {
				ok = false
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", fmt.Errorf("CNI plugins bridge, host-local, loopback, portmap (in %s)", strings.Join(CNIDirs, " or "))
}

// Node is a started real node.
type Node struct {
	o          Options
	dir        string
	bridge     string
	nodeIP     string
	subnet     string
	sock       string
	containerd *exec.Cmd
	kubelet    *exec.Cmd
	exited     chan string
	// stopServing stops the API server's listener on the bridge gateway.
	stopServing func()
}

// Name of the node.
func (n *Node) Name() string { return n.o.Name }

// NodeIP is the node's InternalIP (the bridge's gateway address).
func (n *Node) NodeIP() string { return n.nodeIP }

// Exited yields a message if the kubelet or containerd exits unexpectedly.
func (n *Node) Exited() <-chan string { return n.exited }

func (n *Node) progress(format string, args ...interface{}) {
	if n.o.Progress != nil {
		n.o.Progress(format, args...)
	}
}

// Start cleans up after crashed runs, then starts containerd and the kubelet
// and imports the images. It does not wait for the node to be Ready (see WaitReady).
func Start(ctx context.Context, o Options) (n *Node, err error) {
	if o.StartupTimeout == 0 {
		o.StartupTimeout = 2 * time.Minute
	}
	CleanupStale()
	pid := os.Getpid()
	n = &Node{o: o, dir: filepath.Join(BaseDir, strconv.Itoa(pid)), exited: make(chan string, 2)}
	defer func() {
		if err != nil {
			n.Stop()
			n = nil
		}
	}()
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return n, err
	}
	if err := os.WriteFile(filepath.Join(n.dir, "owner"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return n, err
	}
	if err := n.setupBridge(); err != nil {
		return n, fmt.Errorf("bridge: %w", err)
	}
	if err := n.setupService(ctx); err != nil {
		return n, fmt.Errorf("kubernetes Service: %w", err)
	}
	if err := n.startContainerd(ctx); err != nil {
		return n, fmt.Errorf("containerd: %w", err)
	}
	for _, a := range append([]string{o.PauseArchive}, o.ImageArchives...) {
		if err := n.importImage(ctx, a); err != nil {
			return n, err
		}
	}
	if err := n.startKubelet(); err != nil {
		return n, fmt.Errorf("kubelet: %w", err)
	}
	return n, nil
}

// WaitReady waits until the Node object is Ready, then removes the not-ready
// taint (no node-lifecycle controller runs in the test cluster).
func (n *Node) WaitReady(ctx context.Context, client kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, n.o.StartupTimeout)
	defer cancel()
	last := "not registered"
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case msg := <-n.exited:
			return false, fmt.Errorf("%s", msg)
		default:
		}
		node, err := client.CoreV1().Nodes().Get(ctx, n.o.Name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status == corev1.ConditionTrue
				last = "Ready=" + string(c.Status) + ": " + c.Message
			}
		}
		if !ready {
			return false, nil
		}
		var keep []corev1.Taint
		for _, t := range node.Spec.Taints {
			if t.Key != corev1.TaintNodeNotReady {
				keep = append(keep, t)
			}
		}
		if len(keep) != len(node.Spec.Taints) {
			node.Spec.Taints = keep
			if _, err := client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
				last = "removing not-ready taint: " + err.Error()
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("node %s not Ready: %w (last: %s; see %s)", n.o.Name, err, last, filepath.Join(n.o.LogDir, "kubelet.log"))
	}
	return nil
}

// startProcess starts a child in its own process group that dies with this process.
func (n *Node) startProcess(name string, args []string, logName string) (*exec.Cmd, error) {
	logPath := filepath.Join(n.o.LogDir, logName)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Stdin = nil
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The parent-death signal follows the OS thread that forked, not the
	// process: Go ends a thread whose locked goroutine returns (the pod
	// runtime's namespace threads do), which would kill a child forked from
	// it earlier. So the child is forked from a thread locked until it exits.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		runtime.UnlockOSThread()
		f.Close()
		select {
		case n.exited <- fmt.Sprintf("%s exited (%v); see %s", filepath.Base(name), err, logPath):
		default:
		}
	}()
	if err := <-started; err != nil {
		f.Close()
		return nil, err
	}
	return cmd, nil
}

// stopProcess sends SIGTERM and waits up to grace, then SIGKILL.
func stopProcess(cmd *exec.Cmd, grace time.Duration) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if syscall.Kill(cmd.Process.Pid, 0) == syscall.ESRCH || isZombie(cmd.Process.Pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

// Stop removes every pod through the runtime, stops the kubelet and
// containerd, and removes processes, mounts, the bridge and state.
func (n *Node) Stop() {
	if n == nil {
		return
	}
	start := time.Now()
	stopProcess(n.kubelet, 10*time.Second)
	if n.containerd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := removeAllPods(ctx, n.sock); err != nil {
			klog.InfoS("realnode: removing pods through CRI", "err", err)
		}
		cancel()
	}
	stopProcess(n.containerd, 10*time.Second)
	teardown(n.dir, n.bridge)
	if n.stopServing != nil {
		n.stopServing()
	}
	klog.InfoS("realnode: stopped", "node", n.o.Name, "elapsed", time.Since(start))
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
