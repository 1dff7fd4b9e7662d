// Package cluster starts the embedded test cluster: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler (optionally with the Coscheduling
// gang plugin) and the node/pod simulator, all in this process.
package cluster

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"aiconform.dev/testcluster/internal/clusterip"
	"aiconform.dev/testcluster/internal/coscheduling"
	"aiconform.dev/testcluster/internal/pki"
	"aiconform.dev/testcluster/internal/podruntime"
	"aiconform.dev/testcluster/internal/profile"
	"aiconform.dev/testcluster/internal/realnode"
	"aiconform.dev/testcluster/internal/servicenet"
	"aiconform.dev/testcluster/internal/sim"
	"aiconform.dev/testcluster/internal/standin/autoscaler"
	"aiconform.dev/testcluster/internal/standin/custommetrics"
	"aiconform.dev/testcluster/internal/standin/dcgmexporter"
	"aiconform.dev/testcluster/internal/standin/gateway"
	"aiconform.dev/testcluster/internal/standin/operator"
	"aiconform.dev/testcluster/internal/standin/prometheus"
	"aiconform.dev/testcluster/internal/upstream"
)

// KubernetesVersion is the version of the embedded Kubernetes components
// (keep in sync with go.mod and build.sh).
const KubernetesVersion = "v1.34.4"

const serviceCIDR = "10.96.0.0/16"

// clusterDomain is the DNS domain of Services and pods (the kubelet's --cluster-domain).
const clusterDomain = "cluster.local"

// Options configure a cluster run.
type Options struct {
	Nodes         int    // GPU pool size override; <0 keeps the profile's count
	Profile       string // file path or builtin profile name
	Kubeconfig    string // admin kubeconfig output path (default <data-dir>/kubeconfig)
	DataDir       string // empty: a temp dir that is removed on exit
	Gang          bool
	NoDeviceClass bool
	ReadyFile     string
	Port          int // apiserver secure port; 0 picks a free one
	LogFile       string
	Verbosity     int
	Stdout        io.Writer
	// StartTimeout bounds the time until READY.
	StartTimeout time.Duration
	// RealNode: "auto" (when the machine can), "on" (fail if it cannot) or "off".
	RealNode       string
	RealNodeBinDir string   // kubelet and pause-image.tar (default: this executable's dir)
	ImageArchives  []string // OCI archives imported into the real node's runtime
	// SandboxLeaky: the process runtime's sandboxed handler (RuntimeClass
	// gvisor) shares the host's processes and the node's kernel identity (fault).
	SandboxLeaky bool
	// Operator selects faults of the stand-in AI operator.
	Operator operator.Options
	// DCGMExporter selects faults of the stand-in DCGM exporter.
	DCGMExporter dcgmexporter.Options
	// Monitoring selects faults of the stand-in Prometheus.
	Monitoring prometheus.Options
	// Gateway selects faults of the stand-in Gateway API implementation.
	Gateway gateway.Options
	// GPUPool sizes the autoscaled GPU node pool (Max 0: none).
	GPUPool autoscaler.PoolOptions
	// RunImages maps image repositories to host binaries the simulated
	// nodes run as processes (see podruntime.Runtime).
	RunImages      map[string]string
	RunConcurrency int
	// ImageUsers are the USER of mapped images that do not run as root.
	ImageUsers map[string]podruntime.ImageUser
	// NoHPAController runs kube-controller-manager without the
	// HorizontalPodAutoscaler controller (fault).
	NoHPAController bool
	// NoCustomMetrics leaves the custom metrics API unserved.
	NoCustomMetrics bool
	// LeakyDeviceIsolation: containers see every GPU of their node (fault).
	LeakyDeviceIsolation bool
	// GPUSharing: time-sliced replicas of the GPU nodes' GPUs.
	GPUSharing sim.Sharing
	// VGPU: simulated vGPUs on the first GPU pool's nodes.
	VGPU sim.VGPU
	// DriverVersionSkew: GPU nodes run another driver than they report (fault).
	DriverVersionSkew bool
	// NodeFaults: hardware faults of simulated GPU nodes, by node name.
	NodeFaults map[string][]podruntime.NodeFault
	// NICs: the DRA NIC driver stand-in (dra.net) on some GPU nodes.
	NICs podruntime.NICOptions
	// PodNetns: a network namespace per process-runtime pod (see sim.Simulator.EnablePodNetns).
	PodNetns bool
	// UpstreamDir is a ci/upstream/build.sh output: real upstream components
	// to install instead of their stand-ins (empty: stand-ins only).
	UpstreamDir string
	// Upstream names the components of UpstreamDir to install (empty: all).
	Upstream []string
	// UpstreamImagesOnly maps the upstream images and leaves out the stand-ins
	// they replace, but installs none of the components: a bare cluster that
	// runs the stack once someone deploys it (aiconform deploy of its recipe).
	UpstreamImagesOnly bool
}

// replacedStandIns: the stand-in each upstream component takes the place of.
var replacedStandIns = map[string]string{
	"prometheus-operator": "prometheus",
	"karpenter":           "gpu-pool-autoscaler",
}

// upstreamStack resolves the upstream components to install and adds their
// images to the process runtime's mappings; nil without UpstreamDir.
func (o *Options) upstreamStack() ([]upstream.Component, error) {
	if o.UpstreamDir == "" {
		return nil, nil
	}
	comps, err := upstream.Components(o.UpstreamDir, o.Upstream)
	if err != nil {
		return nil, err
	}
	images, err := upstream.Images(o.UpstreamDir)
	if err != nil {
		return nil, err
	}
	if o.RunImages == nil {
		o.RunImages = map[string]string{}
	}
	if o.ImageUsers == nil {
		o.ImageUsers = map[string]podruntime.ImageUser{}
	}
	for _, im := range images {
		o.RunImages[im.Repository] = im.Binary
		if im.User != (podruntime.ImageUser{}) {
			o.ImageUsers[im.Repository] = im.User
		}
	}
	return comps, nil
}

// standInReplaced reports whether an installed upstream component replaces the stand-in.
func standInReplaced(comps []upstream.Component, standIn string) bool {
	for _, c := range comps {
		if replacedStandIns[c.Name] == standIn {
			return true
		}
	}
	return false
}

func (o *Options) progress(format string, args ...interface{}) {
	if o.Stdout != nil {
		fmt.Fprintf(o.Stdout, format+"\n", args...)
	}
}

// setupLogging sends klog, the std logger and etcd (configured separately)
// to logFile.
func setupLogging(logFile string, verbosity int) error {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	log.SetOutput(f)
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, v := range map[string]string{
		"logtostderr":      "false",
		"alsologtostderr":  "false",
		"stderrthreshold":  "FATAL",
		"log_file":         logFile,
		"one_output":       "true",
		"skip_log_headers": "true",
		"v":                strconv.Itoa(verbosity),
	} {
		if err := fs.Set(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Run starts the cluster, reports READY, and blocks until ctx is cancelled
// or a component fails; then it shuts everything down.
func Run(ctx context.Context, o Options) (retErr error) {
	start := time.Now()
	defer func() {
		// Asked to stop while starting: a clean shutdown, not a failure.
		if errors.Is(retErr, errStopping) {
			o.progress("shutting down")
			retErr = nil
		}
	}()
	if o.StartTimeout == 0 {
		o.StartTimeout = 3 * time.Minute
	}
	upstreamComps, err := o.upstreamStack()
	if err != nil {
		return err
	}

	// --- data dir, logging, profile, PKI ---
	dataDir := o.DataDir
	ownDir := false
	if dataDir == "" {
		d, err := os.MkdirTemp("", "aiconform-testcluster-")
		if err != nil {
			return err
		}
		dataDir, ownDir = d, true
		removeStaleTempDirs(filepath.Dir(d))
		_ = os.WriteFile(filepath.Join(d, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	} else {
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			return err
		}
		dataDir = abs
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return err
		}
		// Every run is a fresh cluster.
		for _, sub := range []string{"etcd", "pki"} {
			os.RemoveAll(filepath.Join(dataDir, sub))
		}
	}
	defer func() {
		if ownDir {
			os.RemoveAll(dataDir)
		}
	}()
	logFile := o.LogFile
	if logFile == "" {
		logFile = filepath.Join(dataDir, "cluster.log")
	}
	if err := setupLogging(logFile, o.Verbosity); err != nil {
		return err
	}
	defer klog.Flush()

	prof, err := profile.Load(o.Profile)
	if err != nil {
		return err
	}
	if o.Nodes >= 0 {
		if err := prof.SetGPUNodes(o.Nodes); err != nil {
			return err
		}
	}
	_, svcNet, _ := net.ParseCIDR(serviceCIDR)
	svcIP := make(net.IP, 4)
	copy(svcIP, svcNet.IP.To4())
	svcIP[3] = 1
	dnsIP := make(net.IP, 4)
	copy(dnsIP, svcIP)
	dnsIP[3] = 10
	certs, err := pki.Generate(filepath.Join(dataDir, "pki"), svcIP)
	if err != nil {
		return fmt.Errorf("generating certificates: %w", err)
	}

	loopback, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.Port))
	if err != nil {
		return fmt.Errorf("apiserver listener: %w", err)
	}
	listener := newMultiListener(loopback)
	port := listener.Addr().(*net.TCPAddr).Port
	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	adminKubeconfig := filepath.Join(dataDir, "admin.kubeconfig")
	if err := certs.WriteKubeconfig(adminKubeconfig, server); err != nil {
		return err
	}
	outKubeconfig := o.Kubeconfig
	if outKubeconfig == "" {
		outKubeconfig = filepath.Join(dataDir, "kubeconfig")
	}
	if outKubeconfig, err = filepath.Abs(outKubeconfig); err != nil {
		return err
	}
	if o.ReadyFile != "" {
		os.Remove(o.ReadyFile)
		defer os.Remove(o.ReadyFile)
	}
	klog.InfoS("aiconform-testcluster starting", "version", KubernetesVersion, "dataDir", dataDir, "profile", prof.Name, "nodes", prof.TotalNodes(), "gang", o.Gang)

	// --- etcd ---
	etcd, etcdURL, err := startEtcd(filepath.Join(dataDir, "etcd"), logFile)
	if err != nil {
		listener.Close()
		return err
	}
	defer func() {
		etcd.Close()
		<-etcd.Server.StopNotify()
	}()
	o.progress("etcd started at %s (%.1fs)", etcdURL, time.Since(start).Seconds())

	// Components run under compCtx; on exit they are cancelled and awaited
	// before etcd is closed.
	compCtx, cancel := context.WithCancel(context.Background())
	var running []<-chan error
	var names []string
	defer func() {
		cancel()
		deadline := time.After(30 * time.Second)
		for i, ch := range running {
			select {
			case err := <-ch:
				if err != nil && !errors.Is(err, context.Canceled) {
					klog.ErrorS(err, "component exited with error during shutdown", "component", names[i])
				}
			case <-deadline:
				klog.InfoS("component did not stop in time", "component", names[i])
			}
		}
	}()
	failed := make(chan error, 8)
	watch := func(name string, ch <-chan error) {
		forward := make(chan error, 1)
		go func() {
			err := <-ch
			forward <- err
			if compCtx.Err() == nil {
				if err == nil {
					err = errors.New("exited")
				}
				failed <- fmt.Errorf("%s: %w", name, err)
			}
		}()
		running = append(running, forward)
		names = append(names, name)
	}

	// --- kube-apiserver ---
	if err := prepareFeatureGates(); err != nil {
		listener.Close()
		return err
	}
	// Control-plane traffic to ClusterIPs, as kube-proxy would carry it.
	egressSock := filepath.Join(dataDir, "egress.sock")
	cipProxy, err := clusterip.Listen(compCtx, egressSock)
	if err != nil {
		listener.Close()
		return err
	}
	egressCfg := filepath.Join(dataDir, "egress-selector.yaml")
	if err := os.WriteFile(egressCfg, []byte(clusterip.EgressConfig(egressSock)), 0o644); err != nil {
		listener.Close()
		return err
	}
	apiArgs := []string{
		"--egress-selector-config-file=" + egressCfg,
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--cert-dir=" + filepath.Join(dataDir, "pki"),
		"--tls-cert-file=" + certs.ServingCert,
		"--tls-private-key-file=" + certs.ServingKey,
		"--client-ca-file=" + certs.CACert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + certs.SAPub,
		"--service-account-signing-key-file=" + certs.SAKey,
		"--authorization-mode=Node,RBAC",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--storage-media-type=application/vnd.kubernetes.protobuf",
		// Kubelets (the real node's) are reached by IP: node names do not resolve.
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-client-certificate=" + certs.AdminCert,
		"--kubelet-client-key=" + certs.AdminKey,
		// The aggregator's identity towards extension API servers (kubeadm's flags):
		// they authenticate it by the requestheader CA this publishes in
		// kube-system/extension-apiserver-authentication.
		"--requestheader-client-ca-file=" + certs.FrontProxyCACert,
		"--requestheader-allowed-names=" + pki.FrontProxyClient,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + certs.FrontProxyClientCert,
		"--proxy-client-key-file=" + certs.FrontProxyClientKey,
	}
	ch, err := runAPIServer(compCtx, apiArgs, listener)
	if err != nil {
		listener.Close()
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	watch("kube-apiserver", ch)

	kubeBytes, err := os.ReadFile(adminKubeconfig)
	if err != nil {
		return err
	}
	restCfg, err := clientcmd.RESTConfigFromKubeConfig(kubeBytes)
	if err != nil {
		return err
	}
	// The simulator alone renews a lease per node every 10 s.
	restCfg.QPS, restCfg.Burst = 1000, 2000
	restCfg.UserAgent = "aiconform-testcluster"
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	startCtx, startCancel := context.WithTimeout(ctx, o.StartTimeout)
	defer startCancel()
	step := func(what string, fn func(ctx context.Context) error) error {
		errc := make(chan error, 1)
		t0 := time.Now()
		go func() { errc <- fn(startCtx) }()
		select {
		case err := <-errc:
			klog.InfoS("start-up step done", "step", what, "took", time.Since(t0), "err", err)
			if err != nil {
				if ctx.Err() != nil {
					return errStopping
				}
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		case err := <-failed:
			return err
		}
	}
	// Wait for /readyz even if we are asked to stop meanwhile: cancelling
	// kube-apiserver while its post-start hooks run makes it klog.Fatal
	// (exit 255, no cleanup). The wait is bounded by the start timeout only.
	apiCtx, apiCancel := context.WithTimeout(context.Background(), o.StartTimeout)
	defer apiCancel()
	errc := make(chan error, 1)
	go func() { errc <- waitHealthy(apiCtx, client.CoreV1().RESTClient(), "/readyz") }()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("waiting for kube-apiserver /readyz: %w", err)
		}
	case err := <-failed:
		return err
	}
	if ctx.Err() != nil {
		o.progress("shutting down")
		return nil
	}
	o.progress("kube-apiserver ready at %s (%.1fs)", server, time.Since(start).Seconds())

	if err := step("syncing the cluster IP proxy", func(ctx context.Context) error {
		return cipProxy.Watch(compCtx, client)
	}); err != nil {
		return err
	}

	if err := step("installing PodGroup CRD", func(ctx context.Context) error {
		return coscheduling.EnsureCRD(ctx, restCfg)
	}); err != nil {
		return err
	}

	// --- kube-scheduler (kube-controller-manager starts once the nodes are registered) ---
	schedCfg := filepath.Join(dataDir, "scheduler-config.yaml")
	if err := os.WriteFile(schedCfg, []byte(schedulerConfig(adminKubeconfig, o.Gang)), 0o644); err != nil {
		return err
	}
	ch, err = runScheduler(compCtx, []string{"--config=" + schedCfg, "--secure-port=0", "--profiling=false"})
	if err != nil {
		return fmt.Errorf("kube-scheduler: %w", err)
	}
	watch("kube-scheduler", ch)
	o.progress("kube-scheduler started (gang=%v) (%.1fs)", o.Gang, time.Since(start).Seconds())

	// --- simulator ---
	kubeletVersion := KubernetesVersion
	if v, err := client.Discovery().ServerVersion(); err == nil && strings.HasPrefix(v.GitVersion, "v1.") {
		kubeletVersion = v.GitVersion
	}
	simClient, err := kubernetes.NewForConfig(kubeletsConfig(restCfg, prof.TotalNodes()))
	if err != nil {
		return err
	}
	simulator := sim.New(simClient, prof, kubeletVersion, o.NoDeviceClass)
	// One informer factory for the in-process components (simulator, stand-ins):
	// one cache per resource instead of one per component.
	shared := sharedInformers(client)
	simulator.SetInformers(shared)
	o.DCGMExporter.Informers = shared
	o.Monitoring.Informers = shared
	o.Gateway.Informers = shared
	simulator.SetGPUSharing(o.GPUSharing)
	simulator.SetVGPU(o.VGPU)
	if len(o.RunImages) > 0 {
		ca, err := os.ReadFile(certs.CACert)
		if err != nil {
			return err
		}
		rt, err := podruntime.NewRuntime(podruntime.RuntimeOptions{Images: o.RunImages, ImageUsers: o.ImageUsers, Concurrency: o.RunConcurrency,
			Dir: filepath.Join(dataDir, "runtime"), Server: server, CAData: ca, LeakyDeviceIsolation: o.LeakyDeviceIsolation,
			DriverVersionSkew: o.DriverVersionSkew, PodNetns: o.PodNetns, SandboxLeaky: o.SandboxLeaky,
			NodeFaults: o.NodeFaults, Tools: toolsBinary()})
		if err != nil {
			return err
		}
		simulator.SetRuntime(rt)
		// pods/log of simulated pods: the API server dials the nodes' kubelet port.
		logPort, err := rt.ServeContainerLogs(compCtx.Done(), certs.ServingCert, certs.ServingKey, ca)
		if err != nil {
			return err
		}
		simulator.SetKubeletPort(logPort)
		// Runs after the components are cancelled (defers run last-in first-out).
		defer rt.Shutdown()
	}
	if err := simulator.EnablePodNetwork(ctx); err != nil {
		o.progress("pod addresses on loopback (Services of simulated pods get no endpoints): %v", err)
	}
	if err := simulator.EnableNICs(ctx, o.NICs); err != nil {
		o.progress("NIC driver stand-in (dra.net) off, no NICs published: %v", err)
	}
	defer simulator.CloseNICs()
	if err := simulator.EnablePodNetns(ctx); err != nil {
		o.progress("--pod-netns off, pods share the host's network namespace: %v", err)
	}
	podnet, hasPodnet := simulator.Podnet()
	var lbPool *servicenet.AddressPool
	if hasPodnet {
		// ClusterIPs are local in the podnet namespace only, where the
		// service proxy and the cluster DNS listen.
		if err := podnet.AddLocalRoute(ctx, serviceCIDR); err != nil {
			return fmt.Errorf("service network in the podnet namespace: %w", err)
		}
		simulator.SetClusterDNS(podruntime.ClusterDNS{Nameserver: dnsIP.String(), Domain: clusterDomain})
		lbPool = servicenet.NewAddressPool(simulator.LoadBalancerAddress)
	}
	burst, hasBurst := autoscaler.BurstPool(prof)
	var burstSlots []string
	if hasBurst && o.GPUPool.Max > 0 && !standInReplaced(upstreamComps, "gpu-pool-autoscaler") {
		burstSlots = simulator.AddNodeSlots(burst, o.GPUPool.Max)
	}
	if err := step("registering nodes", simulator.RegisterNodes); err != nil {
		return err
	}
	o.progress("%d nodes registered (%.1fs)", len(simulator.NodeNames()), time.Since(start).Seconds())
	simulator.RunHeartbeats(compCtx)
	if err := step("starting the node condition taints", func(ctx context.Context) error {
		return runNodeConditionTaints(compCtx, client, shared)
	}); err != nil {
		return err
	}
	if err := step("starting pod simulator", func(ctx context.Context) error { return simulator.RunPods(compCtx, 16) }); err != nil {
		return err
	}
	if hasPodnet {
		if err := step("starting service networking (ClusterIPs, cluster DNS, LoadBalancers)", func(ctx context.Context) error {
			return servicenet.Run(compCtx, client, servicenet.Options{Podnet: podnet, DNSIP: dnsIP.String(), Domain: clusterDomain,
				APIServer: loopback.Addr().String(), LoadBalancers: lbPool, LoadBalancerNamespace: servicenet.Host{}})
		}); err != nil {
			return err
		}
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	if err := step("starting PodGroup status controller", func(ctx context.Context) error {
		return coscheduling.RunStatusController(compCtx, client, dyn)
	}); err != nil {
		return err
	}
	if err := simulator.SandboxAvailable(); err != nil {
		o.progress("no sandboxed RuntimeClass: %v", err)
	} else if err := step("creating RuntimeClass "+podruntime.SandboxRuntimeClass+" (handler "+podruntime.SandboxHandler+")", simulator.EnsureSandboxRuntimeClass); err != nil {
		return err
	}
	if err := step("creating DeviceClass", simulator.EnsureDeviceClass); err != nil {
		return err
	}
	if err := step("publishing ResourceSlices", simulator.PublishResourceSlices); err != nil {
		return err
	}
	o.progress("ResourceSlices published (%.1fs)", time.Since(start).Seconds())
	// --- kube-controller-manager ---
	// Started once the nodes and their ResourceSlices exist, as after a restart of
	// it in a running cluster: its informers then list thousands of nodes once,
	// instead of handling each registration (the EndpointSlice controller's
	// topology cache walks every node on each node added).
	kcmArgs := []string{
		"--kubeconfig=" + adminKubeconfig,
		"--authentication-kubeconfig=" + adminKubeconfig,
		"--authorization-kubeconfig=" + adminKubeconfig,
		"--secure-port=0",
		"--leader-elect=false",
		"--controllers=" + strings.Join(controllerList(o.NoHPAController), ","),
		"--service-account-private-key-file=" + certs.SAKey,
		"--root-ca-file=" + certs.CACert,
		"--use-service-account-credentials=false",
		"--cluster-name=aiconform-testcluster",
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--concurrent-gc-syncs=5",
		"--profiling=false",
		// HPAs react within seconds and scale down after a short window
		// (an HPA's own behavior.scaleDown overrides the window).
		"--horizontal-pod-autoscaler-sync-period=1s",
		"--horizontal-pod-autoscaler-downscale-stabilization=5s",
	}
	ch, err = runControllerManager(compCtx, kcmArgs)
	if err != nil {
		return fmt.Errorf("kube-controller-manager: %w", err)
	}
	watch("kube-controller-manager", ch)

	o.progress("kube-controller-manager started (%.1fs)", time.Since(start).Seconds())

	if err := step("publishing NICs (dra.net)", simulator.PublishNICs); err != nil {
		return err
	}

	var rn *realnode.Node
	if err := step("starting the real node", func(ctx context.Context) (err error) {
		rn, err = startRealNode(ctx, &o, certs, server, dataDir, client, listener, net.JoinHostPort(svcIP.String(), "443"))
		return err
	}); err != nil {
		return err
	}
	defer rn.Stop()
	var realNodeExited <-chan string
	if rn != nil {
		realNodeExited = rn.Exited()
	}
	if len(burstSlots) > 0 {
		if err := step("starting the GPU pool autoscaler", func(ctx context.Context) error {
			return autoscaler.Run(compCtx, client, simulator, autoscaler.Options{
				Slots: burstSlots, Min: o.GPUPool.Min, Template: autoscaler.Template(burst),
				ScaleDownAfter: o.GPUPool.ScaleDownAfter, NoScaleDown: o.GPUPool.NoScaleDown, Informers: shared,
			})
		}); err != nil {
			return err
		}
	}

	if err := step("installing the stand-in operator", func(ctx context.Context) error {
		return operator.Run(compCtx, restCfg, o.Operator)
	}); err != nil {
		return err
	}

	if !o.NoCustomMetrics {
		if err := step("starting the custom metrics API", func(ctx context.Context) error {
			return custommetrics.Run(compCtx, restCfg)
		}); err != nil {
			return err
		}
	}

	if err := step("installing the stand-in DCGM exporter", func(ctx context.Context) error {
		return dcgmexporter.Run(compCtx, client, o.DCGMExporter)
	}); err != nil {
		return err
	}

	if !standInReplaced(upstreamComps, "prometheus") {
		if err := step("installing the stand-in Prometheus", func(ctx context.Context) error {
			return prometheus.Run(compCtx, restCfg, o.Monitoring)
		}); err != nil {
			return err
		}
	}

	if len(upstreamComps) > 0 && !o.UpstreamImagesOnly {
		if err := step("installing upstream components", func(ctx context.Context) error {
			in, err := upstream.NewInstaller(restCfg, o.progress)
			if err != nil {
				return err
			}
			return in.Install(ctx, upstreamComps)
		}); err != nil {
			return err
		}
	}

	// After the upstream components: Gateway API CRDs one of them ships (Traefik's, the
	// real ones) are then in place and the stand-in serves its GatewayClass with them.
	if lbPool != nil {
		// Each call asks for another address (n counts the calls).
		o.Gateway.Address = func(n int) (string, bool) {
			return lbPool.Take(fmt.Sprintf("gateway stand-in #%d", n), nil)
		}
	}
	if err := step("installing the stand-in Gateway API implementation", func(ctx context.Context) error {
		return gateway.Run(compCtx, restCfg, o.Gateway)
	}); err != nil {
		return err
	}

	if err := step("waiting for cluster readiness", func(ctx context.Context) error {
		return waitReady(ctx, client, simulator, !o.NoDeviceClass)
	}); err != nil {
		return err
	}

	if err := certs.WriteKubeconfig(outKubeconfig, server); err != nil {
		return err
	}
	if o.ReadyFile != "" {
		tmp := o.ReadyFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(outKubeconfig+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, o.ReadyFile); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	klog.InfoS("cluster ready", "elapsed", elapsed, "kubeconfig", outKubeconfig)
	o.progress("cluster ready in %.1fs: %d nodes (profile %s), kubernetes %s, log %s", elapsed.Seconds(), prof.TotalNodes(), prof.Name, kubeletVersion, logFile)
	o.progress("READY kubeconfig=%s", outKubeconfig)
	simulator.WarmNodeRoots(compCtx)

	select {
	case <-ctx.Done():
		o.progress("shutting down")
		// Components (e.g. the apiserver's etcd client, whose logger writes
		// to stderr) complain about cancelled requests while stopping; send
		// that to the log file.
		redirectStderr(logFile)
		return nil
	case err := <-failed:
		return err
	case msg := <-realNodeExited:
		return fmt.Errorf("real node: %s", msg)
	}
}

var errStopping = errors.New("stopping")

var savedStderr *os.File

// Stderr is the process's original stderr, also after redirectStderr.
func Stderr() *os.File {
	if savedStderr != nil {
		return savedStderr
	}
	return os.Stderr
}

func redirectStderr(logFile string) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	orig, err := unix.Dup(2)
	if err != nil {
		return
	}
	if err := unix.Dup2(int(f.Fd()), 2); err != nil {
		unix.Close(orig)
		return
	}
	savedStderr = os.NewFile(uintptr(orig), "stderr")
}

// controllers run by kube-controller-manager. Node lifecycle, IPAM and cloud
// controllers are left out: the simulator owns node health and taints.
var controllers = []string{
	"serviceaccount-token-controller",
	"serviceaccount-controller",
	"namespace-controller",
	"garbage-collector-controller",
	"daemonset-controller",
	"job-controller",
	"cronjob-controller",
	"deployment-controller",
	"replicaset-controller",
	"replicationcontroller-controller",
	"statefulset-controller",
	"disruption-controller",
	"resourceclaim-controller",
	"resourcequota-controller",
	"endpoints-controller",
	"endpointslice-controller",
	"pod-garbage-collector-controller",
	"ttl-after-finished-controller",
	"root-ca-certificate-publisher-controller",
	"clusterrole-aggregation-controller",
	"persistentvolume-binder-controller",
	"persistentvolumeclaim-protection-controller",
	"persistentvolume-protection-controller",
	"ephemeral-volume-controller",
}

// hpaController is the HorizontalPodAutoscaler controller's name.
const hpaController = "horizontal-pod-autoscaler-controller"

// controllerList is the --controllers value: controllers plus the HPA
// controller unless noHPA.
func controllerList(noHPA bool) []string {
	out := append([]string(nil), controllers...)
	if !noHPA {
		out = append(out, hpaController)
	}
	return out
}

// sharedInformers is the informer factory of the cluster's in-process
// components. Its caches leave out managedFields, which none of them reads
// (kube-controller-manager trims its caches the same way).
func sharedInformers(client kubernetes.Interface) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(trimManagedFields))
}

func trimManagedFields(obj interface{}) (interface{}, error) {
	if m, err := meta.Accessor(obj); err == nil && m.GetManagedFields() != nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// kubeletQPS is a kubelet's default client rate limit (kubeAPIQPS; burst twice that).
const kubeletQPS = 50

// kubeletsConfig is the client configuration of the simulator, which speaks
// for all nodes' kubelets: their rate limits added up.
func kubeletsConfig(base *rest.Config, nodes int) *rest.Config {
	cfg := rest.CopyConfig(base)
	cfg.QPS = max(base.QPS, float32(kubeletQPS*nodes))
	cfg.Burst = max(base.Burst, 2*kubeletQPS*nodes)
	return cfg
}

func waitHealthy(ctx context.Context, rc rest.Interface, path string) error {
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		status := 0
		rc.Get().AbsPath(path).Do(ctx).StatusCode(&status)
		return status == 200, nil
	})
}

func waitReady(ctx context.Context, client kubernetes.Interface, s *sim.Simulator, deviceClass bool) error {
	var last, logged string
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if last != logged {
			klog.InfoS("waiting for cluster readiness", "last", last)
			logged = last
		}
		ready, err := readyNodes(ctx, client)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if want := len(s.NodeNames()); ready < want {
			last = fmt.Sprintf("%d/%d nodes Ready", ready, want)
			return false, nil
		}
		if deviceClass {
			if _, err := client.ResourceV1().DeviceClasses().Get(ctx, sim.DeviceClassName, metav1.GetOptions{}); err != nil {
				last = "DeviceClass: " + err.Error()
				return false, nil
			}
		}
		slices, err := countResourceSlices(ctx, client)
		if err != nil || slices < s.GPUNodeCount() {
			last = "ResourceSlices not yet published"
			return false, nil
		}
		if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			last = "default ServiceAccount: " + err.Error()
			return false, nil
		}
		if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
			last = "kube-root-ca.crt: " + err.Error()
			return false, nil
		}
		return true, nil
	})
	if err != nil && last != "" {
		return fmt.Errorf("%w (last: %s)", err, last)
	}
	return err
}

// listPage is the page size of readiness lists: thousands of nodes are read
// a page at a time instead of in one response.
const listPage = 500

// readyNodes counts the nodes whose Ready condition is True.
func readyNodes(ctx context.Context, client kubernetes.Interface) (int, error) {
	ready := 0
	opts := metav1.ListOptions{Limit: listPage}
	for {
		nodes, err := client.CoreV1().Nodes().List(ctx, opts)
		if err != nil {
			return 0, err
		}
		for _, n := range nodes.Items {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if nodes.Continue == "" {
			return ready, nil
		}
		opts.Continue = nodes.Continue
	}
}

// countResourceSlices counts ResourceSlices from one short page: its items
// plus the remaining item count the API server reports.
func countResourceSlices(ctx context.Context, client kubernetes.Interface) (int, error) {
	opts := metav1.ListOptions{Limit: 1}
	count := 0
	for {
		list, err := client.ResourceV1().ResourceSlices().List(ctx, opts)
		if err != nil {
			return 0, err
		}
		count += len(list.Items)
		if list.RemainingItemCount != nil {
			return count + int(*list.RemainingItemCount), nil
		}
		if list.Continue == "" {
			return count, nil
		}
		opts.Continue, opts.Limit = list.Continue, listPage
	}
}

// removeStaleTempDirs deletes temp data dirs of earlier runs that could not
// clean up (killed with SIGKILL, or a component called klog.Fatal): their
// "pid" file names a process that no longer exists.
func removeStaleTempDirs(tmp string) {
	matches, _ := filepath.Glob(filepath.Join(tmp, "aiconform-testcluster-*"))
	for _, dir := range matches {
		b, err := os.ReadFile(filepath.Join(dir, "pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := unix.Kill(pid, 0); err == unix.ESRCH {
			os.RemoveAll(dir)
		}
	}
}

// toolsBinary is this executable, which stands in for nvidia-smi and dcgmi in
// containers (empty when it cannot be found: containers get no utilities).
func toolsBinary() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return exe
}
