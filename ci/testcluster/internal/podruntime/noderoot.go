package podruntime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"aiconform.dev/testcluster/internal/profile"
)

// pciDeviceIDs maps GPU products (the nvidia.com/gpu.product label value) to
// their PCI device ids, for the fake sysfs of simulated nodes.
var pciDeviceIDs = map[string]string{
	"NVIDIA-H100-80GB-HBM3": "0x2330",
	"NVIDIA-H100-PCIe":      "0x2331",
	"NVIDIA-H200":           "0x2335",
	"NVIDIA-GB200":          "0x2941",
	"NVIDIA-B200":           "0x2901",
	"NVIDIA-A100-SXM4-80GB": "0x20b2",
}

// gpuPCIAddress is the PCI address of the i-th GPU (bus numbers spread like
// an 8-GPU HGX board).
func gpuPCIAddress(i int) string { return fmt.Sprintf("0000:%02x:00.0", 0x18+0x11*i) }

// osRelease renders /etc/os-release for a nodeInfo.osImage such as
// "Ubuntu 24.04.1 LTS" or "Red Hat Enterprise Linux 9.4 (Plow)".
func osRelease(osImage string) string {
	ids := []struct{ prefix, id, name string }{
		{"Ubuntu", "ubuntu", "Ubuntu"},
		{"Debian", "debian", "Debian GNU/Linux"},
		{"Red Hat Enterprise Linux", "rhel", "Red Hat Enterprise Linux"},
		{"Rocky Linux", "rocky", "Rocky Linux"},
		{"Amazon Linux", "amzn", "Amazon Linux"},
		{"Container-Optimized OS", "cos", "Container-Optimized OS"},
		{"Bottlerocket", "bottlerocket", "Bottlerocket"},
	}
	id, name := "linux", "Linux"
	for _, x := range ids {
		if strings.HasPrefix(osImage, x.prefix) {
			id, name = x.id, x.name
			break
		}
	}
	version, versionID := "", ""
	for _, f := range strings.Fields(osImage) {
		if f[0] >= '0' && f[0] <= '9' {
			version = strings.TrimSpace(osImage[strings.Index(osImage, f):])
			parts := strings.SplitN(f, ".", 3)
			versionID = parts[0]
			if len(parts) > 1 {
				versionID += "." + parts[1]
			}
			break
		}
	}
	if osImage == "" {
		osImage = name
	}
	var b strings.Builder
	fmt.Fprintf(&b, "PRETTY_NAME=%q\nNAME=%q\nID=%s\n", osImage, name, id)
	if versionID != "" {
		fmt.Fprintf(&b, "VERSION_ID=%q\nVERSION=%q\n", versionID, version)
	}
	return b.String()
}

// nodeTree is the fake host filesystem of a simulated node: what hostPath
// volumes and the container's /proc and /sys overlays show. Paths are
// relative to the node root.
func nodeTree(n Node) map[string]string {
	pl := n.Pool
	kernel := pl.NodeInfo.KernelVersion
	if kernel == "" {
		kernel = "6.8.0-generic"
	}
	cpus := 8
	if q, ok := pl.ResourceList()["cpu"]; ok && q.Value() > 0 {
		cpus = int(q.Value())
	}
	files := map[string]string{
		"etc/os-release":                          osRelease(pl.NodeInfo.OSImage),
		"etc/hostname":                            n.Name + "\n",
		"proc/sys/kernel/osrelease":               kernel + "\n",
		"proc/sys/kernel/hostname":                n.Name + "\n",
		"proc/sys/kernel/pid_max":                 "4194304\n",
		"proc/sys/kernel/numa_balancing":          "0\n",
		"proc/sys/vm/max_map_count":               "1048576\n",
		"proc/sys/vm/swappiness":                  "60\n",
		"proc/sys/vm/overcommit_memory":           "0\n",
		"proc/sys/fs/file-max":                    "9223372036854775807\n",
		"proc/sys/net/ipv4/ip_forward":            "1\n",
		"proc/sys/net/core/somaxconn":             "4096\n",
		"proc/version":                            fmt.Sprintf("Linux version %s (buildd@simulated) #1 SMP\n", kernel),
		"proc/cpuinfo":                            cpuinfo(cpus, pl.Architecture()),
		"sys/bus/pci/devices/0000:00:00.0/vendor": "0x8086\n",
		"sys/bus/pci/devices/0000:00:00.0/device": "0x09a2\n",
		"sys/bus/pci/devices/0000:00:00.0/class":  "0x060000\n",
	}
	modules := []string{"overlay", "br_netfilter", "nf_conntrack", "ip_tables"}
	if g := pl.GPU; g != nil {
		modules = append(modules, "nvidia", "nvidia_uvm", "nvidia_modeset", "nvidia_peermem")
		if g.DriverVersion != "" {
			files["sys/module/nvidia/version"] = g.DriverVersion + "\n"
			files["proc/driver/nvidia/version"] = fmt.Sprintf("NVRM version: NVIDIA UNIX Open Kernel Module  %s  (simulated)\n", g.DriverVersion)
		}
		for _, f := range nodeDeviceFiles(g) {
			files[f] = ""
		}
		dev := gpuDeviceID(g)
		for i := 0; i < g.Count; i++ {
			d := "sys/bus/pci/devices/" + gpuPCIAddress(i) + "/"
			files[d+"vendor"] = "0x10de\n"
			files[d+"device"] = dev + "\n"
			files[d+"class"] = "0x030200\n"
		}
	}
	var m strings.Builder
	for i, name := range modules {
		fmt.Fprintf(&m, "%s %d %d - Live 0x0000000000000000\n", name, 65536+i*4096, 0)
	}
	files["proc/modules"] = m.String()
	return files
}

func gpuDeviceID(g *profile.GPU) string {
	if id, ok := pciDeviceIDs[g.Product]; ok {
		return id
	}
	return "0x0000"
}

func cpuinfo(cpus int, arch string) string {
	var b strings.Builder
	for i := 0; i < cpus; i++ {
		if arch == "arm64" {
			fmt.Fprintf(&b, "processor\t: %d\nBogoMIPS\t: 2000.00\nFeatures\t: fp asimd sve2\nCPU implementer\t: 0x41\nCPU part\t: 0xd4f\n\n", i)
		} else {
			fmt.Fprintf(&b, "processor\t: %d\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8488C\ncpu cores\t: %d\nflags\t\t: fpu sse sse2 avx avx2 avx512f\n\n", i, cpus)
		}
	}
	return b.String()
}

// writeNodeTree materializes nodeTree under dir (files world-readable, like
// procfs and sysfs).
func writeNodeTree(dir string, files map[string]string) error {
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o444); err != nil {
			return err
		}
	}
	return nil
}

// procOverlays are the files of the node tree bound over the container's own
// /proc, so the container sees the simulated node's kernel like a real one.
var procOverlays = []string{"sys/kernel/osrelease", "version", "cpuinfo", "modules"}

// skewedDriverVersion is the driver a node really runs under the
// driver-version-skew fault.
const skewedDriverVersion = "535.183.01"

// skewDriver replaces the driver version a GPU node's tree shows.
func skewDriver(files map[string]string) {
	if files["sys/module/nvidia/version"] == "" {
		return
	}
	files["sys/module/nvidia/version"] = skewedDriverVersion + "\n"
	files["proc/driver/nvidia/version"] = fmt.Sprintf("NVRM version: NVIDIA UNIX Open Kernel Module  %s  (simulated)\n", skewedDriverVersion)
}
