// Command aiconform-testcluster runs a throw-away Kubernetes cluster with
// simulated GPU nodes on loopback: embedded etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler (with optional gang scheduling)
// and a node/pod simulator, all in one process. See ../../README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"aiconform.dev/testcluster/internal/cluster"
	"aiconform.dev/testcluster/internal/podruntime"
	"aiconform.dev/testcluster/internal/profile"
	"aiconform.dev/testcluster/internal/sim"
	"aiconform.dev/testcluster/internal/standin/autoscaler"
	"aiconform.dev/testcluster/internal/standin/dcgmexporter"
	"aiconform.dev/testcluster/internal/standin/gateway"
	"aiconform.dev/testcluster/internal/standin/operator"
	"aiconform.dev/testcluster/internal/standin/prometheus"
)

func main() {
	for _, t := range podruntime.FakeTools {
		if filepath.Base(os.Args[0]) == t {
			// Standing in for a driver utility inside a container (see podruntime.FakeTool).
			os.Exit(podruntime.FakeTool(t, os.Args[1:], os.Stdout, os.Stderr))
		}
	}
	if len(os.Args) > 1 && os.Args[1] == podruntime.SandboxInitArg {
		// PID 1 of a sandboxed container (see podruntime.SandboxInit).
		os.Exit(podruntime.SandboxInit(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:]))
}

// largeGCPercent is the garbage collector's target (GOGC) for clusters of
// more than largeCluster GPU nodes, unless the environment sets one. Every
// component shares this process's heap, so the heap may grow to
// (1 + GOGC/100) times the live data of all of them: with 10,000 nodes 50
// instead of Go's 100 lowers the peak RSS by about a third, for about a third
// of the CPU spent in GC. Smaller clusters keep Go's default, where memory is
// not what bounds them.
const (
	largeGCPercent = 50
	largeCluster   = 1000
)

func setGCPercent(gpuNodes int) {
	if os.Getenv("GOGC") == "" && gpuNodes > largeCluster {
		debug.SetGCPercent(largeGCPercent)
	}
}

// runImages collects repeated --run-image REPOSITORY=BINARY[,user=UID[:GID]] flags.
type runImages struct {
	binaries map[string]string
	users    map[string]podruntime.ImageUser
}

func (r runImages) String() string { return fmt.Sprint(r.binaries) }
func (r runImages) Set(v string) error {
	repo, bin, user, err := podruntime.ParseRunImage(v)
	if err != nil {
		return err
	}
	r.binaries[repo] = bin
	if user != (podruntime.ImageUser{}) {
		r.users[repo] = user
	}
	return nil
}

func run(args []string) int {
	fs := flag.NewFlagSet("aiconform-testcluster", flag.ContinueOnError)
	var (
		nodes         = fs.Int("nodes", -1, "number of GPU nodes (overrides the count of the profile's first GPU pool)")
		prof          = fs.String("profile", profile.DefaultName, fmt.Sprintf("node profile: a YAML file or a builtin name (%v)", profile.BuiltinNames()))
		kubeconfig    = fs.String("kubeconfig", "", "where to write the admin kubeconfig (default <data-dir>/kubeconfig)")
		dataDir       = fs.String("data-dir", "", "data directory (default: a temp dir removed on exit); etcd/ and pki/ in it are recreated on every start")
		gang          = fs.Bool("gang", true, "enable the Coscheduling (gang) scheduler plugin")
		noDeviceClass = fs.Bool("no-deviceclass", false, "do not create the gpu.nvidia.com DeviceClass")
		opAdmitAll    = fs.Bool("operator-webhook-admits-all", false, "fault: the stand-in operator's admission webhook admits every ModelServer")
		opNoReconcile = fs.Bool("operator-no-reconciler", false, "fault: the stand-in operator does not reconcile ModelServers")
		noHPA         = fs.Bool("no-hpa-controller", false, "fault: kube-controller-manager runs without the HorizontalPodAutoscaler controller")
		noCustomMet   = fs.Bool("no-custom-metrics-api", false, "fault: do not serve custom.metrics.k8s.io (no APIService, no adapter)")
		expFrozen     = fs.Bool("exporter-frozen", false, "fault: the stand-in DCGM exporter's numbers never change (devices idle whatever runs)")
		monNoScrape   = fs.Bool("monitoring-no-scrape", false, "fault: the stand-in Prometheus answers queries but never scrapes")
		gwNoWeights   = fs.Bool("gateway-ignores-weights", false, "fault: the stand-in Gateway API implementation sends every request of an HTTPRoute rule to its first backendRef")
		gwEPPNoLoad   = fs.Bool("gateway-epp-ignores-metrics", false, "fault: the stand-in gateway's InferencePool endpoint picker chooses round robin instead of the least-loaded model server")
		gwNoDisagg    = fs.Bool("gateway-no-disaggregation", false, "fault: the stand-in gateway ignores InferencePool members' llm-d.ai/role labels: each request goes to one model server, no prefill phase runs on a prefill pod")
		poolMin       = fs.Int("gpu-pool-min", 0, "minimum nodes of the autoscaled GPU pool "+autoscaler.PoolName)
		poolMax       = fs.Int("gpu-pool-max", 1, "maximum nodes of the autoscaled GPU pool (0: no pool)")
		poolCooldown  = fs.Duration("gpu-pool-scale-down-after", 10*time.Second, "how long a pool node stays idle before the autoscaler removes it")
		poolNoShrink  = fs.Bool("gpu-pool-no-scale-down", false, "fault: the GPU pool autoscaler never removes nodes")
		readyFile     = fs.String("ready-file", "", "file written with the kubeconfig path once the cluster is ready (removed on exit)")
		port          = fs.Int("port", 0, "kube-apiserver secure port on 127.0.0.1 (0: a free port)")
		logFile       = fs.String("log-file", "", "component log file (default <data-dir>/cluster.log)")
		verbosity     = fs.Int("v", 0, "klog verbosity of the components")
		parentPID     = fs.Int("parent-pid", 0, "exit when this process is gone (polled every 500ms)")
		startTimeout  = fs.Duration("start-timeout", 3*time.Minute, "give up if the cluster is not ready within this time")
		realNode      = fs.String("real-node", "auto", "a kubelet-backed node beside the simulated ones: auto (when the machine can run it), on, off")
		realNodeBins  = fs.String("real-node-bin-dir", "", "directory with kubelet and pause-image.tar (default: this executable's directory)")
		archives      stringList
		runConc       = fs.Int("run-concurrency", 0, "processes of --run-image containers starting at once (default 8 x CPUs, at least 32)")
		images        = runImages{binaries: map[string]string{}, users: map[string]podruntime.ImageUser{}}
	)
	leakyDevices := fs.Bool("leaky-device-isolation", false, "fault: every --run-image container sees every GPU device of its node, allocated or not")
	sliceReplicas := fs.Int("gpu-time-slicing-replicas", 4, "advertise every GPU this many times as nvidia.com/gpu.shared (time-slicing; below 2: off)")
	driverSkew := fs.Bool("driver-version-skew", false, "fault: GPU nodes run driver 535.183.01 while their labels and ResourceSlices report the profile's version")
	podNetns := fs.Bool("pod-netns", false, "give every --run-image pod its own network namespace (lo, eth0 with its pod IP, routed to the host and other pods), as a kubelet with a CNI plugin does; needs root")
	nicNoSecondary := fs.Bool("nic-no-secondary-interface", false, "fault: the NIC driver stand-in publishes NICs and writes networkData to claims, but pods get no interface for their NICs")
	sharingExclusive := fs.Bool("gpu-sharing-exclusive", false, "fault: time-sliced replicas are advertised but each GPU goes to one container at a time")
	vgpuPerGPU := fs.Int("vgpu-per-gpu", 2, "split the last GPU of every node of the first GPU pool into this many vGPUs, published by DRA driver vgpu.nvidia.com (0: no vGPUs)")
	sandboxLeaky := fs.Bool("sandbox-leaky", false, "fault: containers of the sandboxed RuntimeClass gvisor (handler runsc) see the host's processes and the node's kernel identity, like any other container")
	vgpuLeaky := fs.Bool("vgpu-leaky", false, "fault: containers of a vGPU claim see every vGPU of its parent GPU")
	upstreamDir := fs.String("upstream-dir", "", "install real upstream components built by ci/upstream/build.sh (its output dir) instead of their stand-ins; their images run as the built binaries")
	upstreamComps := fs.String("upstream", "", "comma-separated components of --upstream-dir to install (default: all built)")
	upstreamImagesOnly := fs.Bool("upstream-images-only", false, "map the --upstream components' images and leave out the stand-ins they replace, but install none of them (deploy them yourself, e.g. with aiconform deploy)")
	nodeFaults := nodeFaultFlags{}
	fs.Var(nodeFaults, "node-fault", "fault: a hardware fault of a simulated GPU node, NODE=FAULT with FAULT one of missing-gpu, xid79, row-remap-pending, nvlink-down, pcie-x8, ib-rate-half (repeatable)")
	fs.Var(&archives, "image-archive", "OCI/docker archive imported into the real node's runtime (repeatable)")
	fs.Var(images, "run-image", "run containers of image REPOSITORY (any tag) on simulated nodes as processes of BINARY, as the image's USER UID:GID when given (default root): REPOSITORY=BINARY[,user=UID[:GID]] (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	setGCPercent(*nodes)
	if *realNode != "auto" && *realNode != "on" && *realNode != "off" {
		fmt.Fprintf(os.Stderr, "--real-node must be auto, on or off (got %q)\n", *realNode)
		return 2
	}
	if *vgpuPerGPU < 0 {
		fmt.Fprintf(os.Stderr, "--vgpu-per-gpu must be 0 or more (got %d)\n", *vgpuPerGPU)
		return 2
	}
	if *poolMin < 0 || *poolMax < *poolMin {
		fmt.Fprintf(os.Stderr, "--gpu-pool-min (%d) must be between 0 and --gpu-pool-max (%d)\n", *poolMin, *poolMax)
		return 2
	}
	if (*upstreamComps != "" || *upstreamImagesOnly) && *upstreamDir == "" {
		fmt.Fprintf(os.Stderr, "--upstream and --upstream-images-only need --upstream-dir (the output of ci/upstream/build.sh)\n")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "unexpected arguments: %v\n", fs.Args())
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	if *parentPID > 0 {
		ctx = watchParent(ctx, *parentPID)
	}

	err := cluster.Run(ctx, cluster.Options{
		Nodes:          *nodes,
		Profile:        *prof,
		Kubeconfig:     *kubeconfig,
		DataDir:        *dataDir,
		Gang:           *gang,
		NoDeviceClass:  *noDeviceClass,
		ReadyFile:      *readyFile,
		Port:           *port,
		LogFile:        *logFile,
		Verbosity:      *verbosity,
		Stdout:         os.Stdout,
		StartTimeout:   *startTimeout,
		RealNode:       *realNode,
		RealNodeBinDir: *realNodeBins,
		ImageArchives:  archives,
		SandboxLeaky:   *sandboxLeaky,
		RunImages:      images.binaries,
		ImageUsers:     images.users,
		RunConcurrency: *runConc,
		GPUPool:        autoscaler.PoolOptions{Min: *poolMin, Max: *poolMax, ScaleDownAfter: *poolCooldown, NoScaleDown: *poolNoShrink},
		Operator:       operator.Options{WebhookAdmitsAll: *opAdmitAll, NoReconciler: *opNoReconcile},

		NoHPAController:      *noHPA,
		NoCustomMetrics:      *noCustomMet,
		LeakyDeviceIsolation: *leakyDevices,
		GPUSharing:           sim.Sharing{Replicas: *sliceReplicas, Exclusive: *sharingExclusive},
		DriverVersionSkew:    *driverSkew,
		NodeFaults:           nodeFaults,
		VGPU:                 sim.VGPU{PerGPU: *vgpuPerGPU, Leaky: *vgpuLeaky},
		NICs:                 podruntime.NICOptions{NoSecondaryInterface: *nicNoSecondary},
		PodNetns:             *podNetns,
		DCGMExporter:         dcgmexporter.Options{Frozen: *expFrozen},
		Monitoring:           prometheus.Options{NoScrape: *monNoScrape},
		Gateway:              gateway.Options{IgnoresWeights: *gwNoWeights, EPPIgnoresMetrics: *gwEPPNoLoad, NoDisaggregation: *gwNoDisagg},
		UpstreamDir:          *upstreamDir,
		Upstream:             splitList(*upstreamComps),
		UpstreamImagesOnly:   *upstreamImagesOnly,
	})
	if err != nil {
		fmt.Fprintf(cluster.Stderr(), "aiconform-testcluster: %v\n", err)
		return 1
	}
	return 0
}

// nodeFaultFlags collects repeated --node-fault NODE=FAULT flags.
type nodeFaultFlags map[string][]podruntime.NodeFault

func (f nodeFaultFlags) String() string { return fmt.Sprint(map[string][]podruntime.NodeFault(f)) }
func (f nodeFaultFlags) Set(v string) error {
	node, fault, err := podruntime.ParseNodeFault(v)
	if err != nil {
		return err
	}
	f[node] = append(f[node], fault)
	return nil
}

type stringList []string

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// watchParent cancels the returned context once pid no longer exists.
func watchParent(ctx context.Context, pid int) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
					fmt.Fprintf(os.Stdout, "parent process %d is gone, shutting down\n", pid)
					return
				}
			}
		}
	}()
	return ctx
}
