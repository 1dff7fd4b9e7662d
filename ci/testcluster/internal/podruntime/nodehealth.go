package podruntime

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Node-health readings of simulated GPU nodes, healthy unless a node fault
// says otherwise. They live where a node agent reads them on a real node:
// PCIe link attributes of the GPUs and NICs and InfiniBand ports in sysfs,
// NVRM driver records in /dev/kmsg, /proc/uptime, and what the NVIDIA driver
// utilities print. The NVIDIA container runtime injects nvidia-smi into
// containers that ask for GPUs (NVIDIA_VISIBLE_DEVICES); the process runtime
// does the same with this binary standing in for nvidia-smi and dcgmi (see
// FakeTool), printing the node's readings from toolDataDir.

// NodeFault is a hardware fault of one simulated node.
type NodeFault string

const (
	// FaultMissingGPU: GPU 3 fell off the bus: gone from sysfs and the
	// driver utilities, while the node still advertises every GPU.
	FaultMissingGPU NodeFault = "missing-gpu"
	// FaultXid79: the kernel log has an Xid 79 (GPU fallen off the bus) for GPU 3.
	FaultXid79 NodeFault = "xid79"
	// FaultRowRemapPending: GPU 3 remapped a row after an uncorrectable
	// error and needs a reset.
	FaultRowRemapPending NodeFault = "row-remap-pending"
	// FaultNVLinkDown: NVLink 5 of GPU 3 is inactive.
	FaultNVLinkDown NodeFault = "nvlink-down"
	// FaultPCIeX8: GPU 3's PCIe link trained at x8 of x16.
	FaultPCIeX8 NodeFault = "pcie-x8"
	// FaultIBRateHalf: InfiniBand port mlx5_0/1 runs at 200 of 400 Gb/s.
	FaultIBRateHalf NodeFault = "ib-rate-half"
)

// NodeFaults lists every fault, for flag help and validation.
var NodeFaults = []NodeFault{FaultMissingGPU, FaultXid79, FaultRowRemapPending, FaultNVLinkDown, FaultPCIeX8, FaultIBRateHalf}

// faultyGPU is the GPU index node faults affect.
const faultyGPU = 3

// hcasPerNode InfiniBand HCAs on every GPU node (one per GPU on an HGX board).
const hcasPerNode = 8

// toolDataDir is where a GPU node's driver-utility outputs live, in the node
// root and (read-only) in containers that get the utilities.
const toolDataDir = "usr/share/aiconform-testcluster/nvidia"

// ParseNodeFault parses NODE=FAULT.
func ParseNodeFault(v string) (node string, fault NodeFault, err error) {
	node, f, ok := strings.Cut(v, "=")
	if !ok || node == "" {
		return "", "", fmt.Errorf("--node-fault %q: want NODE=FAULT", v)
	}
	for _, k := range NodeFaults {
		if string(k) == f {
			return node, k, nil
		}
	}
	names := make([]string, len(NodeFaults))
	for i, k := range NodeFaults {
		names[i] = string(k)
	}
	return "", "", fmt.Errorf("--node-fault %q: unknown fault %q (one of %s)", v, f, strings.Join(names, ", "))
}

func hasFault(faults []NodeFault, f NodeFault) bool {
	for _, x := range faults {
		if x == f {
			return true
		}
	}
	return false
}

// hcaPCIAddress is the PCI address of the i-th InfiniBand HCA (beside its GPU).
func hcaPCIAddress(i int) string { return fmt.Sprintf("0000:%02x:00.0", 0x1a+0x11*i) }

// simGPU is one GPU's readings.
type simGPU struct {
	index     int
	uuid      string
	pci       string
	width     int
	remap     bool
	nvlinkOff int // link index that is down; -1: none
}

// healthGPUs are a node's GPUs as the driver sees them.
func healthGPUs(nodeName string, count int, faults []NodeFault) []simGPU {
	var out []simGPU
	for i := 0; i < count; i++ {
		if i == faultyGPU && hasFault(faults, FaultMissingGPU) {
			continue
		}
		g := simGPU{index: len(out), uuid: GPUUUID(nodeName, i), pci: gpuPCIAddress(i), width: 16, nvlinkOff: -1}
		if i == faultyGPU {
			if hasFault(faults, FaultPCIeX8) {
				g.width = 8
			}
			g.remap = hasFault(faults, FaultRowRemapPending)
			if hasFault(faults, FaultNVLinkDown) {
				g.nvlinkOff = 5
			}
		}
		out = append(out, g)
	}
	return out
}

// addNodeHealth adds the health readings of a GPU node to its tree.
func addNodeHealth(files map[string]string, nodeName string, gpuCount int, product string, driver string, faults []NodeFault) {
	if driver == "" {
		driver = "550.127.05"
	}
	const gen5 = "32.0 GT/s PCIe\n"
	gpus := healthGPUs(nodeName, gpuCount, faults)
	if hasFault(faults, FaultMissingGPU) {
		delete(files, "sys/bus/pci/devices/"+gpuPCIAddress(faultyGPU)+"/vendor")
		delete(files, "sys/bus/pci/devices/"+gpuPCIAddress(faultyGPU)+"/device")
		delete(files, "sys/bus/pci/devices/"+gpuPCIAddress(faultyGPU)+"/class")
	}
	for _, g := range gpus {
		d := "sys/bus/pci/devices/" + g.pci + "/"
		files[d+"current_link_speed"] = gen5
		files[d+"max_link_speed"] = gen5
		files[d+"current_link_width"] = fmt.Sprintf("%d\n", g.width)
		files[d+"max_link_width"] = "16\n"
	}
	for i := 0; i < hcasPerNode; i++ {
		d := "sys/bus/pci/devices/" + hcaPCIAddress(i) + "/"
		files[d+"vendor"] = "0x15b3\n"
		files[d+"device"] = "0x1021\n"
		files[d+"class"] = "0x020700\n"
		files[d+"current_link_speed"] = gen5
		files[d+"max_link_speed"] = gen5
		files[d+"current_link_width"] = "16\n"
		files[d+"max_link_width"] = "16\n"
		p := fmt.Sprintf("sys/class/infiniband/mlx5_%d/ports/1/", i)
		files[p+"state"] = "4: ACTIVE\n"
		files[p+"phys_state"] = "5: LinkUp\n"
		files[p+"link_layer"] = "InfiniBand\n"
		files[p+"rate"] = "400 Gb/sec (4X NDR)\n"
		if i == 0 && hasFault(faults, FaultIBRateHalf) {
			files[p+"rate"] = "200 Gb/sec (4X HDR)\n"
		}
	}
	files["proc/uptime"] = "86400.00 1382400.00\n"
	kmsg := []string{
		"6,1021,12000512,-;nvidia-nvlink: Nvlink Core is being initialized, major device number 508",
		fmt.Sprintf("6,1022,12001877,-;NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  %s  Release Build  (simulated)", driver),
	}
	if hasFault(faults, FaultXid79) {
		bus := strings.TrimSuffix(gpuPCIAddress(faultyGPU), ".0")
		kmsg = append(kmsg,
			fmt.Sprintf("3,2211,80000000000,-;NVRM: Xid (PCI:%s): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.", bus),
			fmt.Sprintf("3,2212,80000000100,-;NVRM: GPU %s: GPU has fallen off the bus.", gpuPCIAddress(faultyGPU)))
	}
	files["dev/kmsg"] = strings.Join(kmsg, "\n") + "\n"
	files[toolDataDir+"/nvidia-smi-q.xml"] = nvidiaSmiXML(gpus, product, driver)
	files[toolDataDir+"/nvidia-smi-nvlink-s.txt"] = nvlinkText(gpus, product, false)
	files[toolDataDir+"/nvidia-smi-nvlink-e.txt"] = nvlinkText(gpus, product, true)
	files[toolDataDir+"/dcgmi-diag.json"] = dcgmDiagJSON(gpus)
}

// nvidiaSmiXML renders `nvidia-smi -q -x` (the elements the node agent reads).
func nvidiaSmiXML(gpus []simGPU, product, driver string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<?xml version=\"1.0\" ?>\n<!DOCTYPE nvidia_smi_log SYSTEM \"nvsmi_device_v12.dtd\">\n<nvidia_smi_log>\n")
	fmt.Fprintf(&b, "\t<driver_version>%s</driver_version>\n\t<attached_gpus>%d</attached_gpus>\n", driver, len(gpus))
	for _, g := range gpus {
		bus := "0000" + g.pci // 00000000:18:00.0, as nvidia-smi writes it
		unc, pending := 0, "No"
		if g.remap {
			unc, pending = 1, "Yes"
		}
		fmt.Fprintf(&b, "\t<gpu id=\"%s\">\n\t\t<product_name>%s</product_name>\n\t\t<uuid>%s</uuid>\n\t\t<minor_number>%d</minor_number>\n", bus, product, g.uuid, g.index)
		fmt.Fprintf(&b, "\t\t<pci>\n\t\t\t<pci_bus_id>%s</pci_bus_id>\n\t\t\t<pci_gpu_link_info>\n\t\t\t\t<pcie_gen>\n\t\t\t\t\t<max_link_gen>5</max_link_gen>\n\t\t\t\t\t<current_link_gen>5</current_link_gen>\n\t\t\t\t</pcie_gen>\n\t\t\t\t<link_widths>\n\t\t\t\t\t<max_link_width>16x</max_link_width>\n\t\t\t\t\t<current_link_width>%dx</current_link_width>\n\t\t\t\t</link_widths>\n\t\t\t</pci_gpu_link_info>\n\t\t</pci>\n", bus, g.width)
		b.WriteString("\t\t<clocks_event_reasons>\n\t\t\t<clocks_event_reason_gpu_idle>Active</clocks_event_reason_gpu_idle>\n")
		for _, r := range []string{"applications_clocks_setting", "sw_power_cap", "hw_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown", "sync_boost", "sw_thermal_slowdown", "display_clocks_setting"} {
			fmt.Fprintf(&b, "\t\t\t<clocks_event_reason_%s>Not Active</clocks_event_reason_%s>\n", r, r)
		}
		b.WriteString("\t\t</clocks_event_reasons>\n")
		b.WriteString("\t\t<ecc_mode>\n\t\t\t<current_ecc>Enabled</current_ecc>\n\t\t\t<pending_ecc>Enabled</pending_ecc>\n\t\t</ecc_mode>\n")
		b.WriteString("\t\t<ecc_errors>\n")
		for _, scope := range []string{"volatile", "aggregate"} {
			fmt.Fprintf(&b, "\t\t\t<%s>\n\t\t\t\t<sram_correctable>0</sram_correctable>\n\t\t\t\t<sram_uncorrectable_parity>0</sram_uncorrectable_parity>\n\t\t\t\t<sram_uncorrectable_secded>0</sram_uncorrectable_secded>\n\t\t\t\t<dram_correctable>0</dram_correctable>\n\t\t\t\t<dram_uncorrectable>0</dram_uncorrectable>\n\t\t\t</%s>\n", scope, scope)
		}
		b.WriteString("\t\t</ecc_errors>\n")
		b.WriteString("\t\t<retired_pages>\n\t\t\t<double_bit_retirement>\n\t\t\t\t<retired_count>N/A</retired_count>\n\t\t\t</double_bit_retirement>\n\t\t\t<pending_retirement>N/A</pending_retirement>\n\t\t</retired_pages>\n")
		fmt.Fprintf(&b, "\t\t<remapped_rows>\n\t\t\t<remapped_row_corr>0</remapped_row_corr>\n\t\t\t<remapped_row_unc>%d</remapped_row_unc>\n\t\t\t<remapped_row_pending>%s</remapped_row_pending>\n\t\t\t<remapped_row_failure>No</remapped_row_failure>\n\t\t</remapped_rows>\n", unc, pending)
		b.WriteString("\t\t<temperature>\n\t\t\t<gpu_temp>34 C</gpu_temp>\n\t\t\t<gpu_temp_max_threshold>95 C</gpu_temp_max_threshold>\n\t\t\t<gpu_temp_slow_threshold>92 C</gpu_temp_slow_threshold>\n\t\t</temperature>\n")
		b.WriteString("\t</gpu>\n")
	}
	b.WriteString("</nvidia_smi_log>\n")
	return b.String()
}

// nvlinkText renders `nvidia-smi nvlink -s` (or `-e` with errors): 18 links per GPU.
func nvlinkText(gpus []simGPU, product string, errors bool) string {
	var b strings.Builder
	for _, g := range gpus {
		fmt.Fprintf(&b, "GPU %d: %s (UUID: %s)\n", g.index, product, g.uuid)
		for l := 0; l < 18; l++ {
			switch {
			case errors:
				fmt.Fprintf(&b, "\t Link %d: Replay Errors: 0\n\t Link %d: Recovery Errors: 0\n\t Link %d: CRC Errors: 0\n", l, l, l)
			case l == g.nvlinkOff:
				fmt.Fprintf(&b, "\t Link %d: <inactive>\n", l)
			default:
				fmt.Fprintf(&b, "\t Link %d: 26.562 GB/s\n", l)
			}
		}
	}
	return b.String()
}

// dcgmDiagJSON renders `dcgmi diag -r 1 -j` (DCGM 3.x layout): every deployment test passes.
func dcgmDiagJSON(gpus []simGPU) string {
	ids := make([]string, len(gpus))
	for i, g := range gpus {
		ids[i] = fmt.Sprint(g.index)
	}
	type result struct {
		GPUIDs string `json:"gpu_ids"`
		Status string `json:"status"`
	}
	type test struct {
		Name    string   `json:"name"`
		Results []result `json:"results"`
	}
	var tests []test
	for _, n := range []string{"Denylist", "NVML Library", "CUDA Main Library", "Permissions and OS-related Blocks", "Persistence Mode", "Environmental Variables", "Page Retirement/Row Remap", "Graphics Processes", "Inforom"} {
		tests = append(tests, test{Name: n, Results: []result{{GPUIDs: strings.Join(ids, ","), Status: "PASS"}}})
	}
	doc := map[string]any{"DCGM GPU Diagnostic": map[string]any{
		"test_categories": []any{map[string]any{"category": "Deployment", "tests": tests}},
		"version":         "3.3.5",
	}}
	out, _ := json.MarshalIndent(doc, "", "\t")
	return string(out) + "\n"
}

// FakeTools are the driver utilities this binary stands in for in containers.
var FakeTools = []string{"nvidia-smi", "dcgmi"}

// FakeTool runs as nvidia-smi or dcgmi inside a container: it prints the
// node's readings from /toolDataDir for the invocations the node agent makes
// and fails like the real tool for anything else. It returns the exit code.
func FakeTool(name string, args []string, stdout, stderr io.Writer) int {
	dir := "/" + toolDataDir
	file := ""
	joined := strings.Join(args, " ")
	switch {
	case name == "nvidia-smi" && joined == "-q -x":
		file = "nvidia-smi-q.xml"
	case name == "nvidia-smi" && joined == "nvlink -s":
		file = "nvidia-smi-nvlink-s.txt"
	case name == "nvidia-smi" && joined == "nvlink -e":
		file = "nvidia-smi-nvlink-e.txt"
	case name == "dcgmi" && len(args) == 4 && args[0] == "diag" && args[1] == "-r" && args[3] == "-j":
		file = "dcgmi-diag.json"
	}
	if file == "" {
		fmt.Fprintf(stderr, "%s %s: not supported by the simulated node\n", name, joined)
		return 2
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 9
	}
	_, _ = stdout.Write(b)
	return 0
}

// wantsDriverUtilities: the container asks the NVIDIA runtime for GPUs (its
// NVIDIA_VISIBLE_DEVICES, or GPUs allocated to it).
func wantsDriverUtilities(envValue string, allocated string) bool {
	v := envValue
	if v == "" {
		v = allocated
	}
	return v != "" && v != "void" && v != "none"
}

// envValue is the literal value of a container's environment variable.
func envValue(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
