// Package podruntime is the process runtime of the simulated nodes, their
// kubelet and container runtime: the containers of mapped images run as
// local processes, with the node's fake host tree, its GPUs and NICs,
// volumes, credentials, probes and network namespaces. The node simulator
// (internal/sim) hands it the pods bound to its nodes (Runtime.SyncPod),
// tells it of their devices (Host) and publishes the statuses it computes.
package podruntime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"aiconform.dev/testcluster/internal/profile"
)

// RuntimeOptions configure the process runtime of simulated nodes.
type RuntimeOptions struct {
	// Images maps image repositories (any tag) to host binaries: containers
	// of those images run as processes of the binary.
	Images map[string]string
	// ImageUsers are the USER of mapped images (by repository) that do not
	// run as root: a container without runAsUser runs as it, as from the image.
	ImageUsers map[string]ImageUser
	// Concurrency bounds processes that are starting or short-lived; a
	// process gives its slot back once it has run for slotHold.
	Concurrency int
	// Dir holds per-pod directories and per-node root trees.
	Dir string
	// Server and CAData go into the kubeconfig of pods with credentials.
	Server string
	CAData []byte
	// LeakyDeviceIsolation gives every container every GPU of its node,
	// whatever it was allocated (fault).
	LeakyDeviceIsolation bool
	// DriverVersionSkew installs another driver on the GPU nodes than the
	// one their labels and ResourceSlices report (fault).
	DriverVersionSkew bool
	// SandboxLeaky makes the sandboxed handler (RuntimeClass gvisor) run its
	// containers like any other, with the host's /proc (its processes) and
	// the node's kernel identity; only the network stays the pod's (fault).
	SandboxLeaky bool
	// PodNetns gives every pod a network namespace of its own on a routed
	// pod network (see Runtime.EnablePodNetns).
	PodNetns bool
	// NodeFaults are hardware faults of simulated GPU nodes by node name
	// (see nodehealth.go).
	NodeFaults map[string][]NodeFault
	// Tools is the binary that stands in for nvidia-smi and dcgmi in
	// containers asking for GPUs (see FakeTool); empty: the containers get
	// no driver utilities.
	Tools string
}

// slotHold is how long a process occupies a concurrency slot at most, so
// long-running servers cannot starve short jobs.
const slotHold = 2 * time.Second

// containerBinaryDir is where the mapped binary appears in a container.
const containerBinaryDir = "/usr/local/bin"

// kubeconfigPath is where a pod with credentials finds its kubeconfig.
const kubeconfigPath = "/var/run/aiconform-testcluster/kubeconfig"

// Node is a simulated node as the runtime sees it.
type Node struct {
	Name string
	IP   string
	Pool *profile.Pool
}

// Host is what the runtime needs from the simulator of its nodes: the
// devices its DRA drivers and device plugin advertise.
type Host interface {
	// VGPUDevices maps the vGPU device minors of a node to their UUIDs
	// (empty without vGPUs).
	VGPUDevices(node string) map[int]string
	// ClaimDevices returns, per request of a ResourceClaim, the device
	// minors allocated to it on a node: its GPUs, then its vGPUs.
	ClaimDevices(claim *resourcev1.ResourceClaim, node string) map[string][]int
	// TimeSlicing returns the replicas per GPU of a node's time-sliced GPUs
	// (below 2: not time-sliced) and whether each GPU goes to one container
	// at a time (fault).
	TimeSlicing(node string) (replicas int, exclusive bool)
}

// Runtime runs the containers of mapped images as host processes.
type Runtime struct {
	opts     RuntimeOptions
	host     Host                 // the simulator of the nodes (see Attach)
	client   kubernetes.Interface // the API client of the nodes' kubelets
	version  string               // the nodes' kubelet version
	nics     *nicDriver           // nil: no NIC driver stand-in (see EnableNICs)
	sem      chan struct{}
	isolated bool // root: mount/PID namespaces per container
	env      envSource
	notify   func(key string)
	uplink   *podUplink  // nil: pods share the host's network namespace (see EnablePodNetns)
	dns      *ClusterDNS // nil: pods get no /etc/resolv.conf (see SetClusterDNS)
	// probePeriodCap caps probe periods (0: defaultProbePeriodCap).
	probePeriodCap time.Duration

	mu     sync.Mutex
	closed bool
	pods   map[string]*podRun // by namespace/name
	// stopping: pods whose processes got SIGTERM, closed once they are gone.
	stopping map[string]chan struct{}
	roots    map[string]*nodeRootOnce
	gpus     map[string]*gpuAllocator // by node name
	wg       sync.WaitGroup
}

type nodeRootOnce struct {
	once sync.Once
	dir  string
	err  error
}

// ctrState is the runtime's view of one container.
type ctrState struct {
	name     string
	image    string
	init     bool
	mapped   bool
	restarts int32
	waiting  *corev1.ContainerStateWaiting
	running  *corev1.ContainerStateRunning
	done     *corev1.ContainerStateTerminated
	last     *corev1.ContainerStateTerminated
	id       string
	// Probes (probes.go): a gated container is started/ready only once its
	// startup/readiness probe says so.
	startGated  bool
	readyGated  bool
	startupDone bool
	ready       bool
	probeRuns   int    // probes run, for tests and debugging
	probeErr    string // the last probe's error; empty: it succeeded
}

type podRun struct {
	key    string
	uid    types.UID
	dir    string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	ctrs    map[string]*ctrState
	failed  bool   // an init container failed for good
	refused string // why the node refused the pod at admission
	procs   map[string]*os.Process
	podIP   string
	hostIP  string
	started time.Time

	// stopping: the pod is being deleted; its containers got SIGTERM and, as
	// on a kubelet, are not restarted when they exit.
	stopping bool

	// Status publishing, used by the pod's sync only (the work queue never
	// syncs one pod concurrently).
	writtenFrom  string    // resourceVersion our last status write replaced
	pending      []byte    // statusKey of the status waiting to settle
	pendingSince time.Time // when it was first computed
}

// statusSettle is how long a runtime pod's non-terminal status must hold
// before it is published, as the kubelet notices container changes on a
// relist about once a second: a pod that ends within it costs one status
// write (its final one) rather than one per state it passed through.
const statusSettle = time.Second

// publishDelay is how long to wait before publishing desired: zero for a
// terminal status or one that has held for statusSettle.
func (pr *podRun) publishDelay(desired *corev1.PodStatus, now time.Time) time.Duration {
	if desired.Phase == corev1.PodSucceeded || desired.Phase == corev1.PodFailed {
		return 0
	}
	if key := statusKey(desired); !bytes.Equal(key, pr.pending) {
		pr.pending, pr.pendingSince = key, now
	}
	return max(0, pr.pendingSince.Add(statusSettle).Sub(now))
}

// NewRuntime prepares the runtime (nothing runs until pods arrive).
func NewRuntime(opts RuntimeOptions) (*Runtime, error) {
	if opts.Concurrency <= 0 {
		// Short-lived processes mostly wait on the API server: keep many in flight.
		opts.Concurrency = max(32, 8*runtime.NumCPU())
	}
	for repo, bin := range opts.Images {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(abs)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("--run-image %s=%s: not an executable file", repo, bin)
		}
		opts.Images[repo] = abs
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	return &Runtime{opts: opts, sem: make(chan struct{}, opts.Concurrency), isolated: os.Geteuid() == 0,
		pods: map[string]*podRun{}, stopping: map[string]chan struct{}{}, roots: map[string]*nodeRootOnce{}, gpus: map[string]*gpuAllocator{}}, nil
}

// Attach connects the runtime to the simulator of its nodes: host, the API
// client of their kubelets and their kubelet version. Call before pods arrive.
func (rt *Runtime) Attach(host Host, client kubernetes.Interface, kubeletVersion string) {
	rt.host, rt.client, rt.version = host, client, kubeletVersion
	rt.env = apiEnvSource{client: client}
}

// Watch makes the runtime read ConfigMaps and Secrets from the caches of
// factory and call notify with a pod's key whenever its state changes.
// Call before factory starts.
func (rt *Runtime) Watch(factory informers.SharedInformerFactory, notify func(key string)) {
	rt.notify = notify
	rt.env = newCachedEnvSource(factory, rt.env)
}

// binaryFor returns the host binary of a mapped image.
func (rt *Runtime) binaryFor(image string) (string, bool) {
	if rt == nil {
		return "", false
	}
	b, ok := rt.opts.Images[imageRepository(image)]
	return b, ok
}

// Manages reports whether any container of the pod has a mapped image
// (false on a nil runtime).
func (rt *Runtime) Manages(pod *corev1.Pod) bool {
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if _, ok := rt.binaryFor(c.Image); ok {
			return true
		}
	}
	return false
}

func (rt *Runtime) get(key string) *podRun {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.pods[key]
}

// ensure starts the pod once; later calls return the running state.
func (rt *Runtime) ensure(ctx context.Context, pod *corev1.Pod, n Node, podIP string) *podRun {
	key := pod.Namespace + "/" + pod.Name
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if pr := rt.pods[key]; pr != nil {
		if pr.uid == pod.UID {
			return pr
		}
		pr.cancel() // a new pod with the same name; the old one is going away
	}
	pctx, cancel := context.WithCancel(ctx)
	if rt.closed {
		cancel()
	}
	pr := &podRun{key: key, uid: pod.UID, cancel: cancel, done: make(chan struct{}),
		dir: filepath.Join(rt.opts.Dir, "pods", string(pod.UID)), ctrs: map[string]*ctrState{},
		procs: map[string]*os.Process{}, podIP: podIP, hostIP: n.IP, started: time.Now()}
	for i, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			_, mapped := rt.binaryFor(c.Image)
			pr.ctrs[c.Name] = &ctrState{name: c.Name, image: c.Image, init: i == 0, mapped: mapped,
				id:      "containerd://" + Hash("proc", string(pod.UID), c.Name)[:64],
				waiting: &corev1.ContainerStateWaiting{Reason: map[bool]string{true: "PodInitializing", false: "ContainerCreating"}[i == 1 && len(pod.Spec.InitContainers) > 0]}}
			probeGates(pr.ctrs[c.Name], &c)
		}
	}
	rt.pods[key] = pr
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		defer close(pr.done)
		rt.runPod(pctx, pod.DeepCopy(), n, pr)
	}()
	return pr
}

// SyncPod starts a pod with mapped images on node n (once; podIP is the
// address the simulator gives it) and publishes the status of its processes
// on top of base (the simulator's status of a started pod) with publish: a
// terminal status at once, others once they have held for statusSettle.
// ctx bounds the pod's processes. It returns when to look again.
func (rt *Runtime) SyncPod(ctx context.Context, pod *corev1.Pod, n Node, base *corev1.PodStatus, now time.Time, publish func(*corev1.PodStatus) error) (time.Duration, error) {
	pr := rt.ensure(ctx, pod, n, base.PodIP)
	if pod.ResourceVersion == pr.writtenFrom {
		// The cache still holds the pod our last write replaced; the
		// write's update event brings the pod back.
		return 0, nil
	}
	base.PodIP = pr.podIP
	base.PodIPs = []corev1.PodIP{{IP: pr.podIP}}
	desired := pr.status(pod, base, now)
	if statusSame(&pod.Status, desired) {
		return 0, nil
	}
	if wait := pr.publishDelay(desired, now); wait > 0 {
		return wait, nil
	}
	err := publish(desired)
	if err == nil {
		pr.writtenFrom = pod.ResourceVersion
	}
	return 0, err
}

// Stop kills the pod's processes (SIGTERM, SIGKILL after the grace period)
// and forgets it once they are gone. stopped is closed then; nil when the
// pod has no processes here. first is true for the call that began stopping.
func (rt *Runtime) Stop(key string, grace time.Duration) (stopped <-chan struct{}, first bool) {
	rt.mu.Lock()
	pr := rt.pods[key]
	delete(rt.pods, key)
	if pr == nil {
		ch := rt.stopping[key]
		rt.mu.Unlock()
		if ch == nil {
			return nil, false
		}
		return ch, false
	}
	ch := make(chan struct{})
	rt.stopping[key] = ch
	rt.mu.Unlock()
	pr.mu.Lock()
	pr.stopping = true
	pr.mu.Unlock()
	go func() {
		pr.signal(syscall.SIGTERM)
		select {
		case <-pr.done:
		case <-time.After(grace):
		}
		pr.cancel()
		<-pr.done
		os.RemoveAll(pr.dir)
		rt.mu.Lock()
		delete(rt.stopping, key)
		rt.mu.Unlock()
		close(ch)
	}()
	return ch, true
}

// Shutdown kills every process and waits for them; pods seen later do not
// start.
func (rt *Runtime) Shutdown() {
	rt.mu.Lock()
	rt.closed = true
	for _, pr := range rt.pods {
		pr.cancel()
	}
	rt.mu.Unlock()
	rt.wg.Wait()
	rt.uplink.Close()
}

func (pr *podRun) signal(sig syscall.Signal) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, p := range pr.procs {
		_ = syscall.Kill(-p.Pid, sig)
		_ = p.Signal(sig)
	}
}

func (pr *podRun) update(name string, fn func(c *ctrState)) {
	pr.mu.Lock()
	fn(pr.ctrs[name])
	pr.mu.Unlock()
}

// runPod prepares the pod (credentials, volumes) and runs its containers:
// init containers in order, then all others, restarting per restartPolicy.
func (rt *Runtime) runPod(ctx context.Context, pod *corev1.Pod, n Node, pr *podRun) {
	defer rt.notify(pr.key)
	if err := os.MkdirAll(pr.dir, 0o755); err != nil {
		rt.failSetup(pr, pod, err)
		return
	}
	if !rt.awaitVolumeSources(ctx, pod, pr) {
		return
	}
	setup, err := rt.preparePod(ctx, pod, n, pr)
	if err != nil {
		if ctx.Err() == nil {
			klog.InfoS("sim runtime: pod setup failed", "pod", pr.key, "err", err)
		}
		var refused admissionError
		if errors.As(err, &refused) {
			pr.mu.Lock()
			pr.failed, pr.refused = true, refused.msg
			pr.mu.Unlock()
			return
		}
		rt.failSetup(pr, pod, err)
		return
	}
	defer rt.releaseDevices(pod, n)
	defer setup.netns.Close()
	defer rt.startVolumeSync(ctx, pod, pr)()
	policy := pod.Spec.RestartPolicy
	var sidecars sync.WaitGroup
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars.Add(1)
			go func() { defer sidecars.Done(); rt.runContainer(ctx, pod, c, setup, pr, corev1.RestartPolicyAlways) }()
			continue
		}
		if !rt.runContainer(ctx, pod, c, setup, pr, initPolicy(policy)) {
			pr.mu.Lock()
			pr.failed = true
			pr.mu.Unlock()
			return
		}
	}
	var wg sync.WaitGroup
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		pr.update(c.Name, func(s *ctrState) { s.waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"} })
		wg.Add(1)
		go func() { defer wg.Done(); rt.runContainer(ctx, pod, c, setup, pr, policy) }()
	}
	rt.notify(pr.key)
	wg.Wait()
	// Sidecars stop once the main containers are done.
	pr.signal(syscall.SIGTERM)
	sidecars.Wait()
}

func initPolicy(p corev1.RestartPolicy) corev1.RestartPolicy {
	if p == corev1.RestartPolicyAlways {
		return corev1.RestartPolicyOnFailure
	}
	return p
}

func (rt *Runtime) failSetup(pr *podRun, pod *corev1.Pod, err error) {
	pr.mu.Lock()
	for _, c := range pr.ctrs {
		if c.mapped {
			c.waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}
		}
	}
	pr.mu.Unlock()
}

// runContainer runs one container until it is done for good under policy;
// true when its last run exited 0. Unmapped containers are simulated:
// init containers complete at once, others run until the pod goes away.
func (rt *Runtime) runContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, setup *podSetup, pr *podRun, policy corev1.RestartPolicy) bool {
	binary, mapped := rt.binaryFor(c.Image)
	now := metav1.Now()
	if !mapped {
		pr.update(c.Name, func(s *ctrState) {
			s.waiting = nil
			if s.init && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				s.done = &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now, ContainerID: s.id}
			} else {
				s.running = &corev1.ContainerStateRunning{StartedAt: now}
			}
		})
		rt.notify(pr.key)
		if !pr.ctrs[c.Name].init {
			<-ctx.Done()
		}
		return true
	}
	backoff := time.Second
	for {
		res := rt.runOnce(ctx, pod, c, binary, setup, pr)
		if ctx.Err() != nil {
			return false
		}
		pr.mu.Lock()
		stopping := pr.stopping
		pr.mu.Unlock()
		restart := !stopping && (policy == corev1.RestartPolicyAlways || (policy == corev1.RestartPolicyOnFailure && res.ExitCode != 0))
		pr.update(c.Name, func(s *ctrState) {
			s.running = nil
			if restart {
				s.last = res
				s.restarts++
				s.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
					Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", backoff, c.Name, pod.Name)}
			} else {
				s.done = res
			}
		})
		rt.notify(pr.key)
		if !restart {
			return res.ExitCode == 0
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Minute)
	}
}

// runOnce starts the container process and waits for it.
func (rt *Runtime) runOnce(ctx context.Context, pod *corev1.Pod, c *corev1.Container, binary string, setup *podSetup, pr *podRun) *corev1.ContainerStateTerminated {
	select {
	case rt.sem <- struct{}{}:
	case <-ctx.Done():
		return &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"}
	}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { <-rt.sem }) }
	defer release()

	start := metav1.Now()
	id := pr.ctrs[c.Name].id
	startErr := func(err error) *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError", Message: err.Error(),
			StartedAt: start, FinishedAt: metav1.Now(), ContainerID: id}
	}
	cmd, spec, msgFile, logFile, err := rt.command(ctx, pod, c, binary, setup, pr)
	if err != nil {
		return startErr(err)
	}
	defer logFile.Close()
	var waitCh <-chan error
	if spec != nil {
		waitCh, err = startIsolated(spec, cmd)
	} else if err = cmd.Start(); err == nil {
		ch := make(chan error, 1)
		go func() { ch <- cmd.Wait() }()
		waitCh = ch
	}
	if err != nil {
		return startErr(err)
	}
	pr.mu.Lock()
	pr.procs[c.Name] = cmd.Process
	pr.mu.Unlock()
	stopKill := context.AfterFunc(ctx, func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
	})
	defer stopKill()
	pr.update(c.Name, func(s *ctrState) {
		s.waiting, s.running = nil, &corev1.ContainerStateRunning{StartedAt: start}
	})
	rt.notify(pr.key)
	stopProbes := rt.startProbes(ctx, c, pr, start.Time)
	timer := time.AfterFunc(slotHold, release)
	defer timer.Stop()
	waitErr := <-waitCh
	stopProbes()
	pr.mu.Lock()
	delete(pr.procs, c.Name)
	pr.mu.Unlock()
	code := int32(0)
	if cmd.ProcessState != nil {
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			code = 128 + int32(ws.Signal())
		default:
			code = int32(ws.ExitStatus())
		}
	} else if waitErr != nil {
		code = 1
	}
	msg, _ := os.ReadFile(msgFile)
	var tail []byte
	if len(msg) == 0 && code != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		tail = readTail(logFile.Name(), 2048+4096)
	}
	return &corev1.ContainerStateTerminated{ExitCode: code, Reason: terminatedReason(code),
		Message:   terminationMessage(msg, tail, code, c.TerminationMessagePolicy),
		StartedAt: start, FinishedAt: metav1.Now(), ContainerID: id}
}

func readTail(file string, n int64) []byte {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return b
}

// podSetup is what every container of a pod shares.
type podSetup struct {
	nodeRoot   string
	node       string
	pool       *profile.Pool     // the node's pool
	volumes    map[string]string // volume name -> host dir (or file for hostPath files)
	kubeconfig string            // host path; empty without credentials
	devices    map[string][]int  // container name -> GPU indices it sees
	leaky      bool              // every container sees every GPU (fault)
	vgpus      map[int]string    // the node's vGPU device minors -> UUIDs
	netns      *netns            // the pod's network namespace; nil: the host's
	sandbox    *sandboxSetup     // RuntimeClass with the sandboxed handler; nil: none
	hosts      string            // host path of the pod's /etc/hosts; empty: none
	tools      string            // binary standing in for nvidia-smi and dcgmi; empty: none
	resolvConf string            // host path of the pod's /etc/resolv.conf; empty: none
}

// nodeRoot materializes the node's fake host tree once.
func (rt *Runtime) nodeRoot(n Node) (string, error) {
	rt.mu.Lock()
	r := rt.roots[n.Name]
	if r == nil {
		r = &nodeRootOnce{dir: filepath.Join(rt.opts.Dir, "nodes", n.Name)}
		rt.roots[n.Name] = r
	}
	rt.mu.Unlock()
	r.once.Do(func() {
		files := nodeTree(n)
		if g := n.Pool.GPU; g != nil {
			name := g.ProductName
			if name == "" {
				name = g.Product
			}
			addNodeHealth(files, n.Name, g.Count, name, g.DriverVersion, rt.opts.NodeFaults[n.Name])
		}
		for minor := range rt.vgpuDevices(n) {
			files["dev/"+gpuDeviceFile(minor)] = ""
		}
		if rt.opts.DriverVersionSkew {
			skewDriver(files)
		}
		r.err = writeNodeTree(r.dir, files)
	})
	return r.dir, r.err
}

// preparePod creates the pod's volumes and, when the pod has a service
// account token volume (the ServiceAccount admission plugin adds one unless
// automountServiceAccountToken is false), a token and kubeconfig.
func (rt *Runtime) preparePod(ctx context.Context, pod *corev1.Pod, n Node, pr *podRun) (*podSetup, error) {
	root, err := rt.nodeRoot(n)
	if err != nil {
		return nil, fmt.Errorf("node root: %w", err)
	}
	setup := &podSetup{nodeRoot: root, node: n.Name, pool: n.Pool, volumes: map[string]string{}, leaky: rt.opts.LeakyDeviceIsolation,
		vgpus: rt.vgpuDevices(n)}
	if n.Pool.GPU != nil {
		setup.tools = rt.opts.Tools
	}
	if setup.devices, err = rt.podDevices(ctx, pod, n); err != nil {
		return nil, err
	}
	var token string
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(pr.dir, "volumes", v.Name)
		switch {
		case v.HostPath != nil:
			p, err := hostPathSource(root, v.HostPath)
			if err != nil {
				return nil, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			setup.volumes[v.Name] = p
			continue
		case v.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return nil, err
			}
			_ = os.Chmod(dir, 0o777)
		case v.Projected != nil:
			files := map[string][]byte{}
			for _, src := range v.Projected.Sources {
				switch {
				case src.ServiceAccountToken != nil:
					if token == "" {
						if token, err = rt.token(ctx, pod, src.ServiceAccountToken); err != nil {
							return nil, fmt.Errorf("volume %q: %w", v.Name, err)
						}
					}
					files[src.ServiceAccountToken.Path] = []byte(token)
				case src.ConfigMap != nil:
					data, err := rt.env.configMap(ctx, pod.Namespace, src.ConfigMap.Name)
					if err != nil && !(src.ConfigMap.Optional != nil && *src.ConfigMap.Optional) {
						return nil, fmt.Errorf("volume %q: %w", v.Name, err)
					}
					addItems(files, data, src.ConfigMap.Items)
				case src.Secret != nil:
					data, err := rt.env.secret(ctx, pod.Namespace, src.Secret.Name)
					if err != nil && !(src.Secret.Optional != nil && *src.Secret.Optional) {
						return nil, fmt.Errorf("volume %q: %w", v.Name, err)
					}
					addItems(files, data, src.Secret.Items)
				case src.DownwardAPI != nil:
					f := podFields{pod: pod, podIP: pr.podIP, hostIP: pr.hostIP}
					for _, item := range src.DownwardAPI.Items {
						if item.FieldRef != nil {
							val, err := f.field(item.FieldRef.FieldPath)
							if err != nil {
								return nil, fmt.Errorf("volume %q: %w", v.Name, err)
							}
							files[item.Path] = []byte(val)
						}
					}
				}
			}
			if err := writeFiles(dir, files); err != nil {
				return nil, err
			}
		case v.ConfigMap != nil || v.Secret != nil:
			var data map[string]string
			var err error
			var items []corev1.KeyToPath
			if v.ConfigMap != nil {
				data, err = rt.env.configMap(ctx, pod.Namespace, v.ConfigMap.Name)
				items = v.ConfigMap.Items
				if err != nil && v.ConfigMap.Optional != nil && *v.ConfigMap.Optional {
					err = nil
				}
			} else {
				data, err = rt.env.secret(ctx, pod.Namespace, v.Secret.SecretName)
				items = v.Secret.Items
				if err != nil && v.Secret.Optional != nil && *v.Secret.Optional {
					err = nil
				}
			}
			if err != nil {
				return nil, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			files := map[string][]byte{}
			addItems(files, data, items)
			if err := writeFiles(dir, files); err != nil {
				return nil, err
			}
		default:
			// Other volume types are not materialized; mounting one fails the container.
			continue
		}
		setup.volumes[v.Name] = dir
	}
	if token != "" {
		setup.kubeconfig = filepath.Join(pr.dir, "kubeconfig")
		if err := os.WriteFile(setup.kubeconfig, podKubeconfig(rt.opts.Server, rt.opts.CAData, token, pod.Namespace), 0o644); err != nil {
			return nil, err
		}
	}
	if !pod.Spec.HostNetwork {
		setup.hosts = filepath.Join(pr.dir, "etc-hosts")
		if err := os.WriteFile(setup.hosts, podHostsFile(pod, pr.podIP), 0o644); err != nil {
			return nil, err
		}
	}
	if rt.dns != nil && !pod.Spec.HostNetwork && rt.podInOwnNetns(pr.podIP) {
		setup.resolvConf = filepath.Join(pr.dir, "etc-resolv.conf")
		if err := os.WriteFile(setup.resolvConf, podResolvConf(pod, *rt.dns, hostResolvConf()), 0o644); err != nil {
			return nil, err
		}
	}
	sandboxed, err := rt.podSandboxed(ctx, pod)
	if err != nil {
		return nil, err
	}
	if sandboxed {
		if setup.sandbox, err = rt.prepareSandbox(pr.dir, root); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	if setup.netns, err = rt.preparePodNetwork(ctx, pod, n, pr.podIP, sandboxed); err != nil {
		return nil, err
	}
	return setup, nil
}

func addItems(files map[string][]byte, data map[string]string, items []corev1.KeyToPath) {
	if len(items) == 0 {
		for k, v := range data {
			files[k] = []byte(v)
		}
		return
	}
	for _, it := range items {
		if v, ok := data[it.Key]; ok {
			files[it.Path] = []byte(v)
		}
	}
}

// hostPathSource maps a hostPath volume to the node root and applies the
// kubelet's type checks (and creation for the *OrCreate types).
func hostPathSource(root string, hp *corev1.HostPathVolumeSource) (string, error) {
	p := filepath.Join(root, filepath.Clean("/"+hp.Path))
	typ := corev1.HostPathUnset
	if hp.Type != nil {
		typ = *hp.Type
	}
	st, err := os.Stat(p)
	exists := err == nil
	switch typ {
	case corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate:
		if !exists {
			return p, os.MkdirAll(p, 0o755)
		}
	case corev1.HostPathFileOrCreate:
		if !exists {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return "", err
			}
			return p, os.WriteFile(p, nil, 0o644)
		}
	case corev1.HostPathDirectory:
		if !exists || !st.IsDir() {
			return "", fmt.Errorf("hostPath type check failed: %s is not a directory on the node", hp.Path)
		}
	case corev1.HostPathFile:
		if !exists || !st.Mode().IsRegular() {
			return "", fmt.Errorf("hostPath type check failed: %s is not a file on the node", hp.Path)
		}
	default:
		if !exists {
			return "", fmt.Errorf("hostPath type check failed: %s does not exist on the node (type %s)", hp.Path, typ)
		}
	}
	return p, nil
}

func (rt *Runtime) token(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := rt.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for service account %s/%s: %w", pod.Namespace, sa, err)
	}
	return tr.Status.Token, nil
}

func podKubeconfig(server string, ca []byte, token, namespace string) []byte {
	cfg := map[string]interface{}{
		"apiVersion":      "v1",
		"kind":            "Config",
		"current-context": "pod",
		"clusters":        []interface{}{map[string]interface{}{"name": "cluster", "cluster": map[string]interface{}{"server": server, "certificate-authority-data": ca}}},
		"users":           []interface{}{map[string]interface{}{"name": "pod", "user": map[string]interface{}{"token": token}}},
		"contexts":        []interface{}{map[string]interface{}{"name": "pod", "context": map[string]interface{}{"cluster": "cluster", "user": "pod", "namespace": namespace}}},
	}
	b, _ := json.Marshal(cfg) // JSON is valid kubeconfig YAML; []byte becomes base64
	return b
}

// securityIDs returns uid, gid and supplementary groups (container settings
// override the pod's; root by default like an image without USER).
func securityIDs(pod *corev1.Pod, c *corev1.Container, image ImageUser) (uid, gid uint32, groups []uint32, err error) {
	u, g := ptr.To(int64(image.UID)), ptr.To(int64(image.GID))
	var nonRoot *bool
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			u = psc.RunAsUser
		}
		if psc.RunAsGroup != nil {
			g = psc.RunAsGroup
		}
		nonRoot = psc.RunAsNonRoot
		for _, sg := range psc.SupplementalGroups {
			groups = append(groups, uint32(sg))
		}
		if psc.FSGroup != nil {
			groups = append(groups, uint32(*psc.FSGroup))
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			u = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			g = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
	}
	uid = uint32(ptr.Deref(u, 0))
	gid = uint32(ptr.Deref(g, 0))
	if ptr.Deref(nonRoot, false) && uid == 0 {
		return 0, 0, nil, fmt.Errorf("container has runAsNonRoot and image will run as root")
	}
	return uid, gid, groups, nil
}

// command builds the process of one container run.
func (rt *Runtime) command(ctx context.Context, pod *corev1.Pod, c *corev1.Container, binary string, setup *podSetup, pr *podRun) (*exec.Cmd, *containerSpec, string, *os.File, error) {
	base := map[string]string{
		"PATH":     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME": pod.Name,
		"HOME":     "/",
	}
	if setup.kubeconfig != "" {
		base["KUBECONFIG"] = kubeconfigPath
		if !rt.isolated {
			base["KUBECONFIG"] = setup.kubeconfig
		}
		addServiceEnv(base, rt.opts.Server)
	}
	if v := containerVisibleDevices(setup, c.Name); v != "" {
		base["NVIDIA_VISIBLE_DEVICES"] = v
	}
	f := podFields{pod: pod, podIP: pr.podIP, hostIP: pr.hostIP}
	env, vars, err := containerEnv(ctx, c, f, setup.pool.ResourceList(), rt.env, base)
	if err != nil {
		return nil, nil, "", nil, err
	}
	argv, err := containerArgv(c, binary, vars)
	if err != nil {
		return nil, nil, "", nil, err
	}
	uid, gid, groups, err := securityIDs(pod, c, rt.opts.ImageUsers[imageRepository(c.Image)])
	if err != nil {
		return nil, nil, "", nil, err
	}
	cdir := filepath.Join(pr.dir, "containers", c.Name)
	if err := os.MkdirAll(filepath.Join(cdir, "rootfs"), 0o755); err != nil {
		return nil, nil, "", nil, err
	}
	msgFile := filepath.Join(cdir, "termination-log")
	if err := os.WriteFile(msgFile, nil, 0o666); err != nil {
		return nil, nil, "", nil, err
	}
	_ = os.Chown(msgFile, int(uid), int(gid))
	logFile, err := os.OpenFile(filepath.Join(pr.dir, c.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, "", nil, err
	}
	var spec *containerSpec
	if rt.isolated {
		spec = &containerSpec{
			Rootfs:   filepath.Join(cdir, "rootfs"),
			Cwd:      c.WorkingDir,
			UID:      uid,
			GID:      gid,
			Groups:   groups,
			Hostname: pod.Name,
			ReadOnly: c.SecurityContext != nil && ptr.Deref(c.SecurityContext.ReadOnlyRootFilesystem, false),
			NetNS:    setup.netns,
		}
		spec.Mounts, err = containerMounts(c, binary, setup, msgFile)
		if err != nil {
			logFile.Close()
			return nil, nil, "", nil, err
		}
		binary = path.Join(containerBinaryDir, path.Base(binary))
		if setup.sandbox.sandboxed() {
			// The init mounts the sandbox's /proc as root, then becomes the program.
			spec.Mounts = sandboxMounts(spec.Mounts, setup.sandbox)
			argv = sandboxArgv(binary, argv, uid, gid, groups)
			binary = argv[0]
			spec.UID, spec.GID, spec.Groups = 0, 0, nil
		}
	} else if len(c.VolumeMounts) > 0 && !onlyTokenMounts(pod, c) {
		logFile.Close()
		return nil, nil, "", nil, fmt.Errorf("volume mounts need mount namespaces: run the test cluster as root")
	}
	cmd := &exec.Cmd{Path: binary, Args: argv, Env: env, Stdout: logFile, Stderr: logFile}
	if spec == nil {
		cmd.Dir = pr.dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	}
	return cmd, spec, msgFile, logFile, nil
}

// podHostsFile is the /etc/hosts a kubelet writes for a pod: loopback names
// (clients dial "localhost", and nothing else resolves it without DNS), the
// pod's own hostname at its IP, and the pod's hostAliases.
func podHostsFile(pod *corev1.Pod, podIP string) []byte {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	if podIP != "" {
		if pod.Spec.Subdomain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.cluster.local\t%s\n", podIP, hostname, pod.Spec.Subdomain, pod.Namespace, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", podIP, hostname)
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return []byte(b.String())
}

func onlyTokenMounts(pod *corev1.Pod, c *corev1.Container) bool {
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(m.Name, "kube-api-access-") {
			return false
		}
	}
	return true
}

// hostLibDirs are bound read-only into every container so the (dynamically
// linked) binary finds its libraries.
var hostLibDirs = []string{"lib", "lib32", "lib64", "libx32", "usr/lib", "usr/lib32", "usr/lib64", "usr/libx32"}

// containerMounts lays out the container filesystem: host libraries, the
// binary, /proc and /sys showing the simulated node, a minimal /dev with the
// device files of the container's GPUs, /tmp, the termination message file,
// the kubeconfig and the volume mounts.
func containerMounts(c *corev1.Container, binary string, setup *podSetup, msgFile string) ([]mountSpec, error) {
	var ms []mountSpec
	for _, d := range hostLibDirs {
		hp := "/" + d
		fi, err := os.Lstat(hp)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			link, err := os.Readlink(hp)
			if err == nil {
				if strings.Contains(d, "/") {
					ms = append(ms, mountSpec{Kind: mountDir, Target: path.Dir(hp)})
				}
				ms = append(ms, mountSpec{Kind: mountSymlink, Source: link, Target: hp})
			}
			continue
		}
		ms = append(ms, mountSpec{Kind: mountBind, Source: hp, Target: hp, ReadOnly: true})
	}
	// The "image" holds only the binary: hide the host distribution's os-release that the
	// library directories would otherwise leak.
	ms = append(ms, mountSpec{Kind: mountBind, Source: "/dev/null", Target: "/usr/lib/os-release", File: true, IfExists: true})
	if _, err := os.Stat("/etc/ld.so.cache"); err == nil {
		ms = append(ms, mountSpec{Kind: mountBind, Source: "/etc/ld.so.cache", Target: "/etc/ld.so.cache", File: true, ReadOnly: true})
	}
	ms = append(ms,
		mountSpec{Kind: mountBind, Source: binary, Target: path.Join(containerBinaryDir, path.Base(binary)), File: true, ReadOnly: true},
		mountSpec{Kind: mountBind, Source: "/proc", Target: "/proc"},
	)
	for _, f := range procOverlays {
		src := filepath.Join(setup.nodeRoot, "proc", f)
		if _, err := os.Stat(src); err == nil {
			ms = append(ms, mountSpec{Kind: mountBind, Source: src, Target: "/proc/" + f, File: true, ReadOnly: true, IfExists: true})
		}
	}
	ms = append(ms,
		mountSpec{Kind: mountBind, Source: filepath.Join(setup.nodeRoot, "sys"), Target: "/sys", ReadOnly: true},
		mountSpec{Kind: mountTmpfs, Source: "mode=755,size=1m", Target: "/dev"},
		mountSpec{Kind: mountTmpfs, Source: "mode=1777,size=64m", Target: "/dev/shm"},
		mountSpec{Kind: mountTmpfs, Source: "mode=1777,size=256m", Target: "/tmp"},
	)
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		ms = append(ms, mountSpec{Kind: mountBind, Source: "/dev/" + d, Target: "/dev/" + d, File: true})
	}
	ms = append(ms, deviceMounts(setup.nodeRoot, setup.devices[c.Name])...)
	if setup.tools != "" && wantsDriverUtilities(envValue(c, "NVIDIA_VISIBLE_DEVICES"), containerVisibleDevices(setup, c.Name)) {
		// What the NVIDIA container runtime injects with the utility capability.
		for _, t := range FakeTools {
			ms = append(ms, mountSpec{Kind: mountBind, Source: setup.tools, Target: "/usr/bin/" + t, File: true, ReadOnly: true})
		}
		ms = append(ms, mountSpec{Kind: mountBind, Source: filepath.Join(setup.nodeRoot, toolDataDir), Target: "/" + toolDataDir, ReadOnly: true})
	}
	msgPath := c.TerminationMessagePath
	if msgPath == "" {
		msgPath = "/dev/termination-log"
	}
	ms = append(ms, mountSpec{Kind: mountBind, Source: msgFile, Target: msgPath, File: true})
	if setup.kubeconfig != "" {
		ms = append(ms, mountSpec{Kind: mountBind, Source: setup.kubeconfig, Target: kubeconfigPath, File: true, ReadOnly: true})
	}
	if setup.hosts != "" {
		ms = append(ms, mountSpec{Kind: mountBind, Source: setup.hosts, Target: "/etc/hosts", File: true})
	}
	if setup.resolvConf != "" {
		ms = append(ms, mountSpec{Kind: mountBind, Source: setup.resolvConf, Target: "/etc/resolv.conf", File: true})
	}
	for _, vm := range c.VolumeMounts {
		src, ok := setup.volumes[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume %q: type not supported by the simulated node runtime", vm.Name)
		}
		if vm.SubPath != "" {
			src = filepath.Join(src, filepath.Clean("/"+vm.SubPath))
		}
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", vm.Name, err)
		}
		ms = append(ms, mountSpec{Kind: mountBind, Source: src, Target: vm.MountPath, File: !st.IsDir(), ReadOnly: vm.ReadOnly})
	}
	return ms, nil
}

// status computes the pod status from the runtime state on top of the
// simulator's base status (IPs, conditions).
func (pr *podRun) status(pod *corev1.Pod, base *corev1.PodStatus, now time.Time) *corev1.PodStatus {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	st := base
	mnow := metav1.NewTime(now)
	cs := func(c corev1.Container) corev1.ContainerStatus {
		s := pr.ctrs[c.Name]
		out := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: ImageID(c.Image), RestartCount: s.restarts, Started: ptr.To(s.running != nil)}
		switch {
		case s.done != nil:
			out.State.Terminated = s.done.DeepCopy()
			out.ContainerID = s.id
		case s.running != nil:
			out.State.Running = s.running.DeepCopy()
			started := !s.startGated || s.startupDone
			out.Started = ptr.To(started)
			out.Ready = started && (!s.readyGated || s.ready)
			out.ContainerID = s.id
		default:
			out.State.Waiting = s.waiting.DeepCopy()
			if out.State.Waiting == nil {
				out.State.Waiting = &corev1.ContainerStateWaiting{Reason: "PodInitializing"}
			}
		}
		if s.last != nil {
			out.LastTerminationState.Terminated = s.last.DeepCopy()
		}
		return out
	}
	st.InitContainerStatuses = nil
	initDone, sidecarsReady := true, true
	for _, c := range pod.Spec.InitContainers {
		x := cs(c)
		st.InitContainerStatuses = append(st.InitContainerStatuses, x)
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		if (sidecar && x.State.Running == nil) || (!sidecar && (x.State.Terminated == nil || x.State.Terminated.ExitCode != 0)) {
			initDone = false
		}
		// Sidecars count for readiness like the kubelet's (restartable init containers).
		sidecarsReady = sidecarsReady && (!sidecar || x.Ready)
	}
	st.ContainerStatuses = nil
	allDone, anyFailed, allReady, anyRunning := true, false, sidecarsReady, false
	for _, c := range pod.Spec.Containers {
		x := cs(c)
		st.ContainerStatuses = append(st.ContainerStatuses, x)
		if x.State.Terminated == nil {
			allDone = false
		} else if x.State.Terminated.ExitCode != 0 {
			anyFailed = true
		}
		if x.State.Running != nil {
			anyRunning = true
		}
		allReady = allReady && x.Ready
	}
	SetCondition(st, corev1.PodInitialized, boolCond(initDone), "", mnow)
	ready := boolCond(allReady && initDone)
	reason := map[bool]string{true: "", false: "ContainersNotReady"}[ready == corev1.ConditionTrue]
	switch {
	case pr.failed || (allDone && anyFailed):
		st.Phase = corev1.PodFailed
		reason = "PodCompleted"
	case allDone:
		st.Phase = corev1.PodSucceeded
		reason = "PodCompleted"
	case anyRunning || (initDone && len(pod.Spec.InitContainers) > 0 && !allDone):
		st.Phase = corev1.PodRunning
	default:
		st.Phase = corev1.PodPending
	}
	if st.Phase == corev1.PodFailed && pr.failed {
		for i := range st.ContainerStatuses {
			if st.ContainerStatuses[i].State.Waiting != nil {
				st.ContainerStatuses[i].State.Waiting = &corev1.ContainerStateWaiting{Reason: "PodInitializing"}
			}
		}
	}
	if pr.refused != "" {
		st.Reason, st.Message = "UnexpectedAdmissionError", "Allocate failed due to "+pr.refused+", which is unexpected"
	}
	SetCondition(st, corev1.ContainersReady, ready, reason, mnow)
	SetCondition(st, corev1.PodReady, ready, reason, mnow)
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		SetCondition(st, corev1.PodReadyToStartContainers, corev1.ConditionFalse, "", mnow)
	}
	return st
}

func boolCond(b bool) corev1.ConditionStatus {
	if b {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

// statusSame compares the parts of a status the runtime changes.
func statusSame(a, b *corev1.PodStatus) bool {
	return a.StartTime != nil && bytes.Equal(statusKey(a), statusKey(b))
}

// statusKey encodes the parts of a status the runtime changes.
func statusKey(s *corev1.PodStatus) []byte {
	b, _ := json.Marshal([]interface{}{s.Phase, s.PodIP, s.ContainerStatuses, s.InitContainerStatuses, condStatuses(s)})
	return b
}

func condStatuses(s *corev1.PodStatus) map[corev1.PodConditionType]corev1.ConditionStatus {
	m := map[corev1.PodConditionType]corev1.ConditionStatus{}
	for _, c := range s.Conditions {
		m[c.Type] = c.Status
	}
	return m
}
