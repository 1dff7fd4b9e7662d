package realnode

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Pod subnets are 10.244.N.0/24 with N in [subnetMin, subnetMax]; the bridge
// aicfrnN gets 10.244.N.1, which is also the node's InternalIP. Addresses live
// on the bridge and in the pods' network namespaces only (no masquerading, no
// route to anywhere else).
const (
	subnetMin = 64
	subnetMax = 250
)

func bridgeName(n int) string { return fmt.Sprintf("aicfrn%d", n) }

// setupBridge picks an unused subnet and creates the bridge with its gateway address.
func (n *Node) setupBridge() error {
	used := map[int]bool{}
	ifaces, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip4 := ipn.IP.To4(); ip4 != nil && ip4[0] == 10 && ip4[1] == 244 {
					used[int(ip4[2])] = true
				}
			}
		}
		var k int
		if _, err := fmt.Sscanf(ifc.Name, "aicfrn%d", &k); err == nil {
			used[k] = true
		}
	}
	span := subnetMax - subnetMin + 1
	first := os.Getpid() % span
	for i := 0; i < span; i++ {
		k := subnetMin + (first+i)%span
		if used[k] {
			continue
		}
		n.bridge = bridgeName(k)
		n.subnet = fmt.Sprintf("10.244.%d.0/24", k)
		n.nodeIP = fmt.Sprintf("10.244.%d.1", k)
		if err := os.WriteFile(filepath.Join(n.dir, "bridge"), []byte(n.bridge), 0o644); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := run(ctx, "ip", "link", "add", n.bridge, "type", "bridge"); err != nil {
			return err
		}
		if err := run(ctx, "ip", "addr", "add", n.nodeIP+"/24", "dev", n.bridge); err != nil {
			return err
		}
		return run(ctx, "ip", "link", "set", n.bridge, "up")
	}
	return fmt.Errorf("no free subnet in 10.244.%d-%d.0/24", subnetMin, subnetMax)
}

func (n *Node) containerdConfig(cniBin string) string {
	d := n.dir
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  # The sandbox has no CAP_SYS_RESOURCE: without this every pod sandbox fails
  # with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[7]q
    conf_dir = %[8]q
    max_conf_num = 1
`, filepath.Join(d, "containerd/root"), filepath.Join(d, "containerd/state"), n.sock, n.sock+".ttrpc",
		filepath.Join(d, "containerd/opt"), PauseImage, cniBin, filepath.Join(d, "cni/net.d"))
}

func (n *Node) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "aiconform-realnode",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": %s,
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, n.bridge, n.subnet, n.nodeIP, n.podRoutes(), filepath.Join(n.dir, "cni/ipam"))
}

// podRoutes routes the kubernetes Service's ClusterIP through the bridge
// gateway (where setupService translates it); nothing else leaves the bridge.
func (n *Node) podRoutes() string {
	host, _, err := net.SplitHostPort(n.o.ServiceAddr)
	if err != nil || net.ParseIP(host) == nil {
		return "[]"
	}
	return fmt.Sprintf(`[{"dst": %q}]`, host+"/32")
}

func (n *Node) startContainerd(ctx context.Context) error {
	cniBin, err := cniBinDir()
	if err != nil {
		return err
	}
	n.sock = filepath.Join(n.dir, "containerd.sock")
	cfg := filepath.Join(n.dir, "containerd.toml")
	if err := writeFile(cfg, n.containerdConfig(cniBin)); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(n.dir, "cni/net.d/10-aiconform.conflist"), n.cniConfig()); err != nil {
		return err
	}
	cmd, err := n.startProcess("containerd", []string{"--config", cfg}, "containerd.log")
	if err != nil {
		return err
	}
	n.containerd = cmd
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return waitCRI(ctx, n.sock, n.exited)
}

// startContainerdOnly starts containerd from an existing state dir's config
// (to remove a crashed run's pods); the caller stops it.
func startContainerdOnly(dir string) (*Node, error) {
	n := &Node{dir: dir, sock: filepath.Join(dir, "containerd.sock"), exited: make(chan string, 2),
		o: Options{LogDir: dir}}
	cfg := filepath.Join(dir, "containerd.toml")
	if _, err := os.Stat(cfg); err != nil {
		return nil, err
	}
	_ = os.Remove(n.sock)
	cmd, err := n.startProcess("containerd", []string{"--config", cfg}, "containerd-cleanup.log")
	if err != nil {
		return nil, err
	}
	n.containerd = cmd
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitCRI(ctx, n.sock, n.exited); err != nil {
		stopProcess(cmd, 5*time.Second)
		return nil, err
	}
	return n, nil
}

func dialCRI(sock string) (*grpc.ClientConn, runtimeapi.RuntimeServiceClient, error) {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	return conn, runtimeapi.NewRuntimeServiceClient(conn), nil
}

func waitCRI(ctx context.Context, sock string, exited <-chan string) error {
	conn, rt, err := dialCRI(sock)
	if err != nil {
		return err
	}
	defer conn.Close()
	var last error
	for {
		select {
		case msg := <-exited:
			return fmt.Errorf("%s", msg)
		case <-ctx.Done():
			return fmt.Errorf("CRI at %s not answering: %v", sock, last)
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := os.Stat(sock); err != nil {
			last = err
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, last = rt.Version(cctx, &runtimeapi.VersionRequest{})
		cancel()
		if last == nil {
			return nil
		}
	}
}

// removeAllPods stops and removes every pod sandbox (their containers, network
// namespaces and CNI attachments with them).
func removeAllPods(ctx context.Context, sock string) error {
	conn, rt, err := dialCRI(sock)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	var errs []string
	for _, sb := range resp.Items {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, err.Error())
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (n *Node) importImage(ctx context.Context, archive string) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := run(ctx, "ctr", "--address", n.sock, "--namespace", "k8s.io", "images", "import", archive); err != nil {
		return fmt.Errorf("importing %s: %w", archive, err)
	}
	n.progress("real node: imported %s (%.1fs)", filepath.Base(archive), time.Since(start).Seconds())
	return nil
}
