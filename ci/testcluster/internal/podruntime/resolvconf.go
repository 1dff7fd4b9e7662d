package podruntime

import (
	"bufio"
	"bytes"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// ClusterDNS is the cluster's DNS service as the kubelet's --cluster-dns
// and --cluster-domain name it.
type ClusterDNS struct {
	Nameserver string // address of the DNS server (the kube-dns ClusterIP)
	Domain     string // cluster domain, e.g. cluster.local
}

// SetClusterDNS gives pods in network namespaces of their own an
// /etc/resolv.conf as a kubelet writes it for their dnsPolicy. Call before
// pods arrive; without it (or for pods sharing the host's namespace) pods
// get none.
func (rt *Runtime) SetClusterDNS(dns ClusterDNS) { rt.dns = &dns }

// Limits the kubelet applies to a pod's resolv.conf.
const (
	maxDNSNameservers = 3
	maxDNSSearches    = 32
)

// hostResolvConf is the node's resolv.conf, which dnsPolicy Default uses.
func hostResolvConf() []byte {
	b, _ := os.ReadFile("/etc/resolv.conf")
	return b
}

// podResolvConf is the /etc/resolv.conf the kubelet writes for a pod
// (not hostNetwork): ClusterFirst (the default) and ClusterFirstWithHostNet
// point at the cluster DNS with the namespace's search path and ndots:5,
// Default takes the node's nameservers and search path, None nothing; then
// spec.dnsConfig's nameservers and searches are appended and its options
// override by name.
func podResolvConf(pod *corev1.Pod, dns ClusterDNS, host []byte) []byte {
	var servers, searches []string
	var options []corev1.PodDNSConfigOption
	switch pod.Spec.DNSPolicy {
	case corev1.DNSDefault:
		servers, searches, options = parseResolvConf(host)
	case corev1.DNSNone:
	default: // ClusterFirst, ClusterFirstWithHostNet
		servers = []string{dns.Nameserver}
		searches = []string{pod.Namespace + ".svc." + dns.Domain, "svc." + dns.Domain, dns.Domain}
		options = []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("5")}}
	}
	if c := pod.Spec.DNSConfig; c != nil {
		servers = appendUnique(servers, c.Nameservers...)
		searches = appendUnique(searches, c.Searches...)
		for _, o := range c.Options {
			replaced := false
			for i := range options {
				if options[i].Name == o.Name {
					options[i], replaced = o, true
				}
			}
			if !replaced {
				options = append(options, o)
			}
		}
	}
	if len(servers) > maxDNSNameservers {
		servers = servers[:maxDNSNameservers]
	}
	if len(searches) > maxDNSSearches {
		searches = searches[:maxDNSSearches]
	}
	var b strings.Builder
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(searches) > 0 {
		b.WriteString("search " + strings.Join(searches, " ") + "\n")
	}
	if len(options) > 0 {
		opts := make([]string, 0, len(options))
		for _, o := range options {
			if o.Value != nil && *o.Value != "" {
				opts = append(opts, o.Name+":"+*o.Value)
			} else {
				opts = append(opts, o.Name)
			}
		}
		b.WriteString("options " + strings.Join(opts, " ") + "\n")
	}
	return []byte(b.String())
}

// parseResolvConf reads nameservers, the search path and options of a resolv.conf.
func parseResolvConf(b []byte) (servers, searches []string, options []corev1.PodDNSConfigOption) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				servers = append(servers, f[1])
			}
		case "search", "domain":
			searches = f[1:]
		case "options":
			for _, o := range f[1:] {
				name, value, ok := strings.Cut(o, ":")
				opt := corev1.PodDNSConfigOption{Name: name}
				if ok {
					opt.Value = ptr.To(value)
				}
				options = append(options, opt)
			}
		}
	}
	return servers, searches, options
}

func appendUnique(list []string, more ...string) []string {
	for _, m := range more {
		dup := false
		for _, l := range list {
			dup = dup || l == m
		}
		if !dup {
			list = append(list, m)
		}
	}
	return list
}

func ptrTo[T any](v T) *T { return &v }
