package dcgmexporter

import (
	"fmt"
	"strings"
)

// Reading is what DCGM reports for one device.
type Reading struct {
	Util, MemCopyUtil  float64 // percent
	FBUsed, FBFree     int64   // MiB
	Temp               float64 // °C
	Power              float64 // W
	SMClock, MemClock  float64 // MHz
	EnergyMilliJoules  int64
	PCIeReplayCounter  int64
	XIDErrors          float64
	NVLinkBandwidthTot int64
}

// readingFor is the reading of a device that is idle or held by a running
// container: a held device is busy, its memory mostly in use.
func readingFor(d Device, busy bool) Reading {
	r := Reading{Temp: 31, Power: 68.5, SMClock: 345, MemClock: 2619, FBFree: d.MemoryMiB}
	if busy {
		used := d.MemoryMiB * 3 / 4
		r = Reading{Util: 97, MemCopyUtil: 41, FBUsed: used, FBFree: d.MemoryMiB - used,
			Temp: 67, Power: 612.3, SMClock: 1980, MemClock: 2619, NVLinkBandwidthTot: 123456}
	}
	return r
}

type family struct {
	name, typ, help string
	value           func(Reading) string
}

var families = []family{
	{"DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", func(r Reading) string { return num(r.SMClock) }},
	{"DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", func(r Reading) string { return num(r.MemClock) }},
	{"DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", func(r Reading) string { return num(r.Temp) }},
	{"DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", func(r Reading) string { return num(r.Power) }},
	{"DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.", func(r Reading) string { return fmt.Sprint(r.PCIeReplayCounter) }},
	{"DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", func(r Reading) string { return num(r.Util) }},
	{"DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", func(r Reading) string { return num(r.MemCopyUtil) }},
	{"DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", func(r Reading) string { return num(r.XIDErrors) }},
	{"DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", func(r Reading) string { return fmt.Sprint(r.FBFree) }},
	{"DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", func(r Reading) string { return fmt.Sprint(r.FBUsed) }},
	{"DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter", "Total number of NVLink bandwidth counters for all lanes.", func(r Reading) string { return fmt.Sprint(r.NVLinkBandwidthTot) }},
}

func num(f float64) string { return fmt.Sprintf("%g", f) }

// Render writes the Prometheus text exposition of node's devices, with the
// labels dcgm-exporter uses (gpu, UUID, device, modelName, Hostname) and, for
// devices held by a container, its namespace, pod and container.
func Render(node string, devices []Device, readings map[int]Reading, holders map[int]Holder) string {
	var b strings.Builder
	for _, f := range families {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		for _, d := range devices {
			labels := fmt.Sprintf(`gpu="%d",UUID=%q,device="nvidia%d",modelName=%q,Hostname=%q`, d.Index, d.UUID, d.Index, d.Model, node)
			if h, ok := holders[d.Index]; ok {
				labels += fmt.Sprintf(`,container=%q,namespace=%q,pod=%q`, h.Container, h.Namespace, h.Pod)
			}
			fmt.Fprintf(&b, "%s{%s} %s\n", f.name, labels, f.value(readings[d.Index]))
		}
	}
	return b.String()
}
