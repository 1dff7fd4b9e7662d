package servicenet

import (
	"context"
	"net"
	"sort"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/klog/v2"
)

// dnsTTL is the TTL of every answer, CoreDNS's kubernetes plugin default.
const dnsTTL = 5

// records is what cluster DNS answers from.
type records interface {
	service(ns, name string) *corev1.Service
	endpointSlices(ns, service string) []*discoveryv1.EndpointSlice
}

// catalog reads records from informer caches.
type catalog struct {
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
}

func (c *catalog) service(ns, name string) *corev1.Service {
	svc, err := c.services.Services(ns).Get(name)
	if err != nil {
		return nil
	}
	return svc
}

func (c *catalog) endpointSlices(ns, service string) []*discoveryv1.EndpointSlice {
	list, _ := c.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service}))
	return list
}

// answer is what a name resolves to: IPv4 addresses or an alias.
type answer struct {
	ips   []string
	cname string
}

// lookup resolves a name in the cluster domain as the kubernetes plugin of
// CoreDNS does: <svc>.<ns>.svc.<domain> is the ClusterIP (a headless
// Service: its ready endpoints' addresses; ExternalName: an alias),
// <hostname>.<svc>.<ns>.svc.<domain> the endpoint of the headless Service
// with that hostname (pods with spec.hostname and spec.subdomain, as
// StatefulSets make them), <a-b-c-d>.<ns>.pod.<domain> the address a.b.c.d;
// the zone's inner names (<ns>.svc.<domain>, ...) exist without records.
// exists is false for any other name (NXDOMAIN).
func lookup(name, domain string, recs records) (ans answer, exists bool) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	if name == domain {
		return answer{}, true
	}
	rest, ok := strings.CutSuffix(name, "."+domain)
	if !ok {
		return answer{}, false
	}
	l := strings.Split(rest, ".")
	kind := l[len(l)-1]
	l = l[:len(l)-1]
	switch {
	case kind == "svc" && len(l) <= 1, kind == "pod" && len(l) <= 1:
		return answer{}, true
	case kind == "svc" && len(l) == 2:
		svc := recs.service(l[1], l[0])
		if svc == nil {
			return answer{}, false
		}
		return serviceAnswer(svc, recs), true
	case kind == "svc" && len(l) == 3:
		svc := recs.service(l[2], l[1])
		if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
			return answer{}, false
		}
		var ips []string
		for _, e := range readyEndpoints(recs.endpointSlices(svc.Namespace, svc.Name), svc.Spec.PublishNotReadyAddresses) {
			if e.Hostname != nil && strings.EqualFold(*e.Hostname, l[0]) {
				ips = append(ips, e.Addresses...)
			}
		}
		return answer{ips: uniqueIPv4(ips)}, len(ips) > 0
	case kind == "pod" && len(l) == 2:
		ip := net.ParseIP(strings.ReplaceAll(l[0], "-", "."))
		if ip == nil || ip.To4() == nil {
			return answer{}, false
		}
		return answer{ips: []string{ip.String()}}, true
	}
	return answer{}, false
}

// serviceAnswer is the Service's name's answer.
func serviceAnswer(svc *corev1.Service, recs records) answer {
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return answer{cname: strings.TrimSuffix(svc.Spec.ExternalName, ".")}
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		var ips []string
		for _, e := range readyEndpoints(recs.endpointSlices(svc.Namespace, svc.Name), svc.Spec.PublishNotReadyAddresses) {
			ips = append(ips, e.Addresses...)
		}
		return answer{ips: uniqueIPv4(ips)}
	default:
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 && svc.Spec.ClusterIP != "" {
			ips = []string{svc.Spec.ClusterIP}
		}
		return answer{ips: uniqueIPv4(ips)}
	}
}

// readyEndpoints are the endpoints of the slices that are ready (all of
// them when the Service publishes not-ready addresses).
func readyEndpoints(slices []*discoveryv1.EndpointSlice, all bool) []discoveryv1.Endpoint {
	var out []discoveryv1.Endpoint
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, e := range s.Endpoints {
			if all || e.Conditions.Ready == nil || *e.Conditions.Ready {
				out = append(out, e)
			}
		}
	}
	return out
}

// uniqueIPv4 keeps the IPv4 addresses, sorted, each once.
func uniqueIPv4(ips []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, ip := range ips {
		p := net.ParseIP(ip)
		if p == nil || p.To4() == nil || seen[p.String()] {
			continue
		}
		seen[p.String()] = true
		out = append(out, p.String())
	}
	sort.Strings(out)
	return out
}

// reply builds the response to one query.
func reply(req *dns.Msg, domain string, recs records) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := req.Question[0]
	ans, exists := lookup(q.Name, domain, recs)
	inZone := dns.IsSubDomain(dns.Fqdn(domain), strings.ToLower(q.Name))
	m.Authoritative = inZone
	if !exists {
		m.Rcode = dns.RcodeNameError
		if inZone {
			m.Ns = []dns.RR{soa(domain)}
		}
		return m
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: dnsTTL}
	}
	switch {
	case ans.cname != "":
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: dns.Fqdn(ans.cname)})
	case q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY:
		for _, ip := range ans.ips {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(ip).To4()})
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{soa(domain)}
	}
	return m
}

// soa is the zone's SOA record (authority of negative answers).
func soa(domain string) dns.RR {
	zone := dns.Fqdn(domain)
	return &dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: dnsTTL},
		Ns: "ns.dns." + zone, Mbox: "hostmaster." + zone, Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: dnsTTL}
}

// serveDNS answers queries on ip:53, UDP and TCP, in ns until ctx ends.
func serveDNS(ctx context.Context, ns Namespace, ip string, recs records, domain string) error {
	addr := net.JoinHostPort(ip, "53")
	pc, err := ns.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	l, err := ns.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return err
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if err := w.WriteMsg(reply(req, domain, recs)); err != nil {
			klog.V(2).InfoS("cluster DNS: writing an answer", "err", err)
		}
	})
	servers := []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: l, Handler: handler}}
	for _, s := range servers {
		go func(s *dns.Server) {
			if err := s.ActivateAndServe(); err != nil {
				klog.InfoS("cluster DNS stopped", "err", err)
			}
		}(s)
	}
	go func() {
		<-ctx.Done()
		for _, s := range servers {
			_ = s.Shutdown()
		}
	}()
	return nil
}
